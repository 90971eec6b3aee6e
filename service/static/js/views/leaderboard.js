// #/leaderboard: the best evaluated checkpoints you may see (yours and shared ones), per env,
// best first (GET /v1/leaderboard); download one.

import { blob, get, saveBlob } from "../api.js";
import { fill, h, number, report } from "../dom.js";

export function show(view) {
  const controller = new AbortController();
  const envSelect = h("select", { id: "leaderboard-env", onchange: () => refresh() },
    h("option", { value: "" }, "every env"));
  const body = h("tbody");
  fill(view, h("div", { class: "title-row" }, h("h1", {}, "Leaderboard"),
    h("label", {}, "Env ", envSelect)),
  h("p", { class: "muted" }, "Each checkpoint's best evaluation: evaluate a checkpoint from its "
    + "job's page to enter it."),
  h("table", { id: "leaderboard" }, h("thead", {}, h("tr", {}, ["return", "±", "episodes",
    "env", "algorithm", "job", "checkpoint", "owner", ""].map((t) => h("th", {}, t)))), body));

  async function download(entry) {
    try {
      const archive = await blob(`/v1/jobs/${entry.job_id}/checkpoints/${entry.checkpoint_id}/archive`);
      saveBlob(archive, `${entry.job_id}-${entry.checkpoint_id}.tar.gz`);
    } catch (error) {
      report(error);
    }
  }

  async function refresh() {
    try {
      const entries = await get("/v1/leaderboard", { env: envSelect.value }, controller.signal);
      fill(body, entries.map((e) => h("tr", {},
        h("td", { class: "num" }, h("strong", {}, number(e.return_mean))),
        h("td", { class: "num" }, number(e.return_std)), h("td", { class: "num" }, e.episodes),
        h("td", {}, e.env), h("td", {}, e.algorithm),
        h("td", {}, h("a", { href: `#/jobs/${e.job_id}` }, e.job_name || e.job_id)),
        h("td", {}, h("code", {}, e.checkpoint_id)), h("td", {}, e.owner),
        h("td", {}, h("button", { type: "button", class: "quiet", onclick: () => download(e) },
          "Download")))));
    } catch (error) {
      report(error);
    }
  }

  get("/v1/envs", null, controller.signal).then((envs) => {
    envs.forEach((e) => envSelect.append(h("option", { value: e.id }, e.id)));
  }).catch(report);
  refresh();
  return () => controller.abort();
}
