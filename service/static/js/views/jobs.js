// #/jobs: your jobs (and, if asked, the ones others shared) with their latest metrics and,
// while queued, their place in the queue; filters; select jobs to compare them.

import { get } from "../api.js";
import { age, every, fill, h, number, report, statusBadge } from "../dom.js";

const STATUSES = ["QUEUED", "PENDING", "RUNNING", "STOPPING", "STOPPED", "SUCCEEDED", "FAILED",
  "LOST"];
const REFRESH_MS = 3000;
const RETURN = "env_runners/episode_return_mean";
const STEPS = "num_env_steps_sampled_lifetime";
const ITERATION = "training_iteration";

export function show(view) {
  const controller = new AbortController();
  const selected = new Set();
  const filter = h("select", { id: "status-filter", onchange: () => refresh() },
    h("option", { value: "" }, "all"), STATUSES.map((s) => h("option", { value: s }, s)));
  const tag = h("input", { id: "tag-filter", type: "text", size: 10, placeholder: "tag",
    onchange: () => refresh() });
  const shared = h("input", { id: "shared-filter", type: "checkbox", onchange: () => refresh() });
  const compare = h("button", { id: "compare", type: "button", disabled: true,
    onclick: () => { window.location.hash = `#/compare/${[...selected].join(",")}`; } },
  "Compare selected");
  const body = h("tbody");
  const summary = h("p", { class: "muted" });
  fill(view,
    h("div", { class: "title-row" }, h("h1", {}, "Jobs"),
      h("label", {}, "Status ", filter), h("label", {}, "Tag ", tag),
      h("label", {}, shared, " with shared jobs"), compare,
      h("a", { class: "button", href: "#/new" }, "New job")),
    h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ["", "id", "name", "status", "algorithm", "env", "iteration",
        "env steps", "mean return", "owner", "age"].map((name) => h("th", {}, name)))),
      body),
    summary);

  function row(job) {
    const latest = job.latest_metrics || {};
    const open = () => { window.location.hash = `#/jobs/${job.id}`; };
    const pick = h("input", { type: "checkbox", class: "pick", checked: selected.has(job.id),
      onclick: (event) => event.stopPropagation(),
      onchange: (event) => {
        if (event.target.checked) selected.add(job.id);
        else selected.delete(job.id);
        compare.disabled = selected.size < 2;
      } });
    const place = job.status === "QUEUED" && job.queue_position
      ? h("small", { class: "muted" }, ` #${job.queue_position}`) : null;
    return h("tr", { class: "link", dataset: { job: job.id }, onclick: open },
      h("td", {}, pick),
      h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.id)),
      h("td", {}, job.name || ""),
      h("td", { title: job.message || "" }, statusBadge(job.status), place),
      h("td", {}, job.spec.algorithm),
      h("td", {}, job.game ? `${job.spec.env} (${job.game})` : job.spec.env),
      h("td", { class: "num" }, number(latest[ITERATION])),
      h("td", { class: "num" }, number(latest[STEPS])),
      h("td", { class: "num" }, number(latest[RETURN])),
      h("td", {}, job.owner),
      h("td", { title: job.created_at }, age(job.created_at)));
  }

  async function refresh() {
    try {
      const found = await get("/v1/jobs", { status: filter.value, summary: "true",
        tag: tag.value.trim(), shared: shared.checked ? "true" : "" }, controller.signal);
      fill(body, found.map(row));
      fill(summary, found.length ? `${found.length} job(s); refreshes every 3 s.`
        : "No jobs yet: submit one from “New job”.");
    } catch (error) {
      report(error);
    }
  }

  return every(REFRESH_MS, refresh, controller);
}
