// #/jobs/<id>: live learning curve and a second chart (from the SSE metrics stream; each attempt
// of a resumed job is its own line), the log tail (SSE), stop / resume / delete, priority,
// the job's spec and the settings it runs with, the trials of a search (state, "stopped early"
// by its scheduler, hyperparameters, best return; PBT's perturbations), checkpoints with
// downloads, and the evaluation panel. A failed job shows why in one line, and what cannot work is disabled.

import { blob, follow, get, patch, post, remove, saveBlob } from "../api.js";
import { LineChart } from "../chart.js";
import { age, fill, h, number, report, statusBadge } from "../dom.js";
import { evaluationPanel } from "./evaluation.js";

const RETURN = "env_runners/episode_return_mean";
const STEPS = "num_env_steps_sampled_lifetime";
const THROUGHPUT = "env_runners/num_env_steps_sampled_lifetime_throughput/throughput_since_last_reduce";
const REFRESH_MS = 3000;
const LOG_LINES = 2000;
const RESUMABLE = new Set(["STOPPED", "FAILED", "LOST"]);
const STOPPABLE = new Set(["QUEUED", "PENDING", "RUNNING", "STOPPING"]);
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g; // terminal colours in Ray's log lines

/** Keys worth a second chart: losses first, then throughput and episode length. */
function secondMetrics(row) {
  const keys = Object.keys(row).filter((k) => typeof row[k] === "number");
  const losses = keys.filter((k) => k.startsWith("learners/") && /loss/i.test(k)).sort();
  return [...losses, ...[THROUGHPUT, "env_runners/episode_len_mean"].filter((k) => keys.includes(k))];
}

function shortName(key) {
  return key === THROUGHPUT ? "env steps / s" : key.replace(/^learners\/default_policy\//, "");
}

export function show(view, jobId) {
  const controller = new AbortController(); // everything this view starts ends with it
  let streams = null; // the current attempt's metrics + log streams
  const rows = [];
  let status = "PENDING";
  const statusBox = h("span", { id: "job-status" });
  const title = h("h1", {}, "Job ", h("code", {}, jobId), " ", statusBox);
  const meta = h("p", { class: "muted", id: "job-meta" });
  const failure = h("p", { class: "failure", id: "job-failure", role: "alert", hidden: true });
  const priority = h("select", { id: "job-priority", onchange: () => setPriority() },
    ["low", "normal", "high"].map((p) => h("option", { value: p }, p)));
  const settings = h("div", { id: "job-settings" });
  const buttons = {
    stop: h("button", { id: "stop", type: "button", onclick: () => act("stop") }, "Stop"),
    resume: h("button", { id: "resume", type: "button", onclick: () => act("resume") }, "Resume"),
    remove: h("button", { id: "delete", type: "button", class: "danger", onclick: () => act("delete") },
      "Delete"),
    png: h("button", { type: "button", class: "quiet", onclick: savePng }, "Save curve PNG"),
  };
  const returnBox = h("figure", { id: "return-chart" },
    h("figcaption", {}, "Mean episode return against env steps, one line per trial"));
  const metricSelect = h("select", { id: "second-metric", onchange: redrawSecond });
  const secondBox = h("figure", { id: "second-chart" },
    h("figcaption", {}, "Second chart: ", metricSelect));
  const checkpointRows = h("tbody");
  const trialsBox = h("section", { id: "trials", hidden: true });
  const log = h("pre", { id: "log", class: "log" });
  const evaluation = evaluationPanel(jobId, controller.signal);
  fill(view, title, meta, failure,
    h("div", { class: "row actions" }, Object.values(buttons), h("label", {}, "priority ", priority)),
    h("div", { class: "charts" }, returnBox, secondBox),
    evaluation.element,
    trialsBox,
    h("section", {}, h("h2", {}, "Checkpoints"), h("table", { id: "checkpoints" },
      h("thead", {}, h("tr", {}, ["id", "trial", "iteration", "env steps", "mean return", ""]
        .map((t) => h("th", {}, t)))), checkpointRows)),
    h("details", { id: "settings-panel" }, h("summary", {}, "Spec and settings this job runs with"),
      settings),
    h("section", {}, h("h2", {}, "Log"), log));
  const returnChart = new LineChart(returnBox, { xLabel: "env steps", yLabel: "mean episode return" });
  const secondChart = new LineChart(secondBox, { xLabel: "env steps", yLabel: "" });

  /** A line per trial and attempt: a resumed attempt's line starts where it took over. */
  function seriesOf(row) {
    const trial = String(row.trial_id ?? "run");
    return row.attempt > 1 ? `${trial} (attempt ${row.attempt})` : trial;
  }

  function addRow(row) {
    rows.push(row);
    const trial = seriesOf(row);
    returnChart.add(trial, row[STEPS], row[RETURN]);
    const known = [...metricSelect.options].map((o) => o.value);
    const fresh = secondMetrics(row).filter((k) => !known.includes(k));
    fresh.forEach((k) => metricSelect.append(h("option", { value: k }, shortName(k))));
    if (fresh.length && !known.length) redrawSecond();
    else secondChart.add(trial, row[STEPS], row[metricSelect.value]);
  }

  function redrawSecond() {
    secondChart.clear();
    secondChart.setLabels({ yLabel: shortName(metricSelect.value) });
    rows.forEach((r) => secondChart.add(seriesOf(r), r[STEPS], r[metricSelect.value]));
  }

  function appendLog(line) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(`${line.replace(ANSI, "")}\n`);
    while (log.childNodes.length > LOG_LINES) log.firstChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  /** Follow this attempt's metrics and logs from the start (both streams end with the job). */
  function startStreams() {
    if (streams) streams.abort();
    streams = new AbortController();
    const signal = AbortSignal.any([controller.signal, streams.signal]);
    rows.length = 0;
    returnChart.clear();
    secondChart.clear();
    log.replaceChildren();
    follow(`/v1/jobs/${jobId}/metrics`, (event, data) => event === "metrics" && addRow(data), signal)
      .then(refresh).catch(report);
    follow(`/v1/jobs/${jobId}/logs`, (event, data) => event === "log" && appendLog(data), signal)
      .catch(report);
  }

  async function refresh() {
    const job = await get(`/v1/jobs/${jobId}`, null, controller.signal);
    status = job.status;
    fill(statusBox, statusBadge(job.status));
    const place = job.queue_position ? ` · queue position ${job.queue_position}` : "";
    fill(meta, `${job.name ? `${job.name} · ` : ""}${job.spec.algorithm} on ${job.spec.env} · `
      + `${job.owner} · created ${age(job.created_at)} · attempt ${job.attempts} · `
      + `${job.checkpoints ?? 0} checkpoint(s)${place}`,
    job.message && job.status !== "FAILED" ? ` · ${job.message}` : "");
    failure.hidden = job.status !== "FAILED";
    fill(failure, job.status === "FAILED" ? `Failed: ${job.message || "no reason given"}` : "");
    const noCheckpoint = !job.checkpoints;
    buttons.stop.disabled = !STOPPABLE.has(job.status);
    buttons.resume.disabled = !RESUMABLE.has(job.status) || noCheckpoint;
    buttons.resume.title = noCheckpoint ? "No checkpoint to resume from" : "";
    buttons.remove.disabled = STOPPABLE.has(job.status);
    priority.value = job.priority;
    evaluation.setReady(!noCheckpoint);
    showSettings(job);
    showTrials(await get(`/v1/jobs/${jobId}/trials`, null, controller.signal));
    const checkpoints = await get(`/v1/jobs/${jobId}/checkpoints`, null, controller.signal);
    fill(checkpointRows, checkpoints.map((c) => h("tr", {},
      h("td", {}, h("code", {}, c.id)), h("td", {}, c.trial_id),
      h("td", { class: "num" }, number(c.iteration)), h("td", { class: "num" }, number(c.env_steps)),
      h("td", { class: "num" }, number(c.return_mean)),
      h("td", {}, h("button", { type: "button", class: "quiet", onclick: () => download(c) }, "Download"),
        " ", h("button", { type: "button", class: "quiet", onclick: () => evaluation.start(c.id) },
          "Evaluate")))));
    return job;
  }

  /** A search's trials, best first, and which trial PBT had copy which (one trial: nothing). */
  function showTrials({ trials, perturbations }) {
    trialsBox.hidden = trials.length < 2;
    if (trialsBox.hidden) return;
    const keys = [...new Set(trials.flatMap((t) => Object.keys(t.hyperparameters)))];
    // A learning rate of 0.0005 is not "0.00": hyperparameters keep three significant digits.
    const value = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(3) : String(v ?? "–"));
    const cell = (v) => h("td", { class: "num" }, value(v));
    fill(trialsBox, h("h2", {}, `Trials (${trials.length})`),
      h("table", { id: "trial-table" },
        h("thead", {}, h("tr", {}, ["trial", "state", ...keys, "iterations", "return", "best return"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, trials.map((t) => h("tr", { class: t.state.replace(" ", "-") },
          h("td", {}, t.trial_id), h("td", {}, t.state),
          keys.map((k) => cell(t.hyperparameters[k])),
          cell(t.iterations), h("td", { class: "num" }, number(t.return_mean)),
          h("td", { class: "num" }, number(t.best_return)))))),
      perturbations.length ? h("details", { id: "perturbations" },
        h("summary", {}, `PBT perturbations (${perturbations.length})`),
        h("ul", {}, perturbations.map((p) => h("li", {},
          `iteration ${p.iteration}: ${p.trial_id} copied ${p.copied ?? "?"}; `
          + Object.entries(p.values).map(([k, v]) => `${k} ${value(p.from_values[k])} → ${value(v)}`)
            .join(", "))))) : "");
  }

  let known = null; // the algorithm's setting names (GET /v1/algorithms), fetched once
  async function showSettings(job) {
    if (settings.dataset.shown === job.updated_at) return;
    settings.dataset.shown = job.updated_at;
    if (!known) {
      const algorithms = await get("/v1/algorithms", null, controller.signal);
      known = new Map(algorithms.map((a) => [a.name, Object.keys(a.config_schema.properties || {})]));
    }
    const resolved = job.resolved_config || {};
    const names = [...(known.get(job.spec.algorithm) || []), "num_env_runners", "num_envs_per_env_runner",
      "num_learners", "num_gpus_per_learner", "seed"];
    fill(settings,
      h("table", { id: "resolved-config" }, h("tbody", {}, names.filter((n) => n in resolved)
        .map((n) => h("tr", {}, h("th", {}, n), h("td", {}, h("code", {},
          JSON.stringify(resolved[n]))))))),
      h("h3", {}, "Spec"), h("pre", { class: "spec" }, JSON.stringify(job.spec, null, 2)));
  }

  async function setPriority() {
    try {
      await patch(`/v1/jobs/${jobId}`, { priority: priority.value }, controller.signal);
      await refresh();
    } catch (error) {
      report(error);
    }
  }

  async function download(checkpoint) {
    try {
      const archive = await blob(`/v1/jobs/${jobId}/checkpoints/${checkpoint.id}/archive`);
      saveBlob(archive, `${jobId}-${checkpoint.id}.tar.gz`);
    } catch (error) {
      report(error);
    }
  }

  async function savePng() {
    try {
      saveBlob(await blob(`/v1/jobs/${jobId}/curve.png`), `${jobId}-curve.png`);
    } catch (error) {
      report(error);
    }
  }

  async function act(action) {
    try {
      if (action === "delete") {
        if (!window.confirm(`Delete job ${jobId} and its files?`)) return;
        await remove(`/v1/jobs/${jobId}`, { purge: "true" });
        window.location.hash = "#/jobs";
        return;
      }
      [buttons.stop, buttons.resume, buttons.remove].forEach((b) => { b.disabled = true; });
      await post(`/v1/jobs/${jobId}/${action}`, undefined, controller.signal);
      if (action === "resume") startStreams();
    } catch (error) {
      report(error);
    } finally {
      if (action !== "delete") refresh().catch(report);
    }
  }

  refresh().then(startStreams).catch(report);
  const timer = setInterval(() => STOPPABLE.has(status) && refresh().catch(report), REFRESH_MS);
  return () => {
    clearInterval(timer);
    controller.abort();
    evaluation.close();
  };
}
