// #/jobs: the caller's jobs with their latest metrics; filter by status; refreshes by itself.

import { get } from "../api.js";
import { age, every, fill, h, number, report, statusBadge } from "../dom.js";

const STATUSES = ["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED", "LOST"];
const REFRESH_MS = 3000;
const RETURN = "env_runners/episode_return_mean";
const STEPS = "num_env_steps_sampled_lifetime";
const ITERATION = "training_iteration";

function row(job) {
  const latest = job.latest_metrics || {};
  const open = () => { window.location.hash = `#/jobs/${job.id}`; };
  return h("tr", { class: "link", dataset: { job: job.id }, onclick: open },
    h("td", {}, h("a", { href: `#/jobs/${job.id}` }, job.id)),
    h("td", {}, statusBadge(job.status)),
    h("td", {}, job.spec.algorithm),
    h("td", {}, job.spec.env),
    h("td", { class: "num" }, number(latest[ITERATION])),
    h("td", { class: "num" }, number(latest[STEPS])),
    h("td", { class: "num" }, number(latest[RETURN])),
    h("td", { title: job.created_at }, age(job.created_at)));
}

export function show(view) {
  const controller = new AbortController();
  const filter = h("select", { id: "status-filter", onchange: () => refresh() },
    h("option", { value: "" }, "all"), STATUSES.map((s) => h("option", { value: s }, s)));
  const body = h("tbody");
  const summary = h("p", { class: "muted" });
  fill(view,
    h("div", { class: "title-row" }, h("h1", {}, "Jobs"),
      h("label", {}, "Status ", filter),
      h("a", { class: "button", href: "#/new" }, "New job")),
    h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ["id", "status", "algorithm", "env", "iteration",
        "env steps", "mean return", "age"].map((name) => h("th", {}, name)))),
      body),
    summary);

  async function refresh() {
    try {
      const found = await get("/v1/jobs", { status: filter.value, summary: "true" },
        controller.signal);
      fill(body, found.map(row));
      fill(summary, found.length ? `${found.length} job(s); refreshes every 3 s.`
        : "No jobs yet: submit one from “New job”.");
    } catch (error) {
      report(error);
    }
  }

  return every(REFRESH_MS, refresh, controller);
}
