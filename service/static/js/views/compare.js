// #/compare/<id>,<id>,...: jobs side by side (GET /v1/compare): their learning curves on one
// chart (a line per job and trial) and a table of the settings where they differ.

import { get } from "../api.js";
import { LineChart } from "../chart.js";
import { fill, h, report, statusBadge } from "../dom.js";

const shown = (value) => (value === undefined ? "–" : JSON.stringify(value));

export function show(view, ids) {
  const controller = new AbortController();
  const chartBox = h("figure", { id: "compare-chart" },
    h("figcaption", {}, "Mean episode return against env steps, a line per job and trial"));
  const jobsBox = h("div", { id: "compare-jobs" });
  const table = h("table", { id: "differences" });
  fill(view, h("h1", {}, "Compare"), jobsBox, chartBox,
    h("section", {}, h("h2", {}, "Settings that differ"), table));
  const chart = new LineChart(chartBox, { xLabel: "env steps", yLabel: "mean episode return" });

  get("/v1/compare", { ids }, controller.signal).then((found) => {
    const label = new Map(found.jobs.map((j) => [j.id, j.name || j.id]));
    fill(jobsBox, h("ul", {}, found.jobs.map((j) => h("li", {},
      h("a", { href: `#/jobs/${j.id}` }, label.get(j.id)), " ", statusBadge(j.status),
      ` ${j.spec.algorithm} on ${j.spec.env} · ${j.owner}`))));
    for (const curve of found.curves) {
      const name = `${label.get(curve.job_id)}/${curve.trial_id}`;
      curve.x.forEach((x, i) => chart.add(name, x, curve.smoothed[i]));
    }
    const order = found.jobs.map((j) => j.id);
    const rows = Object.entries(found.differences);
    fill(table, h("thead", {}, h("tr", {}, h("th", {}, "setting"),
      order.map((id) => h("th", {}, label.get(id))))),
    h("tbody", {}, rows.length ? rows.map(([setting, byJob]) => h("tr", {},
      h("th", {}, h("code", {}, setting)), order.map((id) => h("td", {}, h("code", {},
        shown(byJob[id])))))) : h("tr", {}, h("td", { colspan: order.length + 1 },
      "They were set up the same way."))));
  }).catch(report);
  return () => controller.abort();
}
