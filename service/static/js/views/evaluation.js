// The job view's evaluation panel: start an evaluation of a checkpoint, wait for its score,
// then play its video (fetched with the token, shown through a blob: URL) beside the score.

import { blob, get, post } from "../api.js";
import { fill, h, number, report, statusBadge } from "../dom.js";

const POLL_MS = 1000;
const DONE = new Set(["SUCCEEDED", "FAILED", "STOPPED", "LOST"]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function scoreText(evaluation) {
  const protocol = evaluation.protocol ? `, ${evaluation.protocol} protocol` : "";
  const hns = evaluation.human_normalized == null ? ""
    : `, human-normalized ${number(evaluation.human_normalized, 3)}`;
  return `return ${number(evaluation.return_mean)} ± ${number(evaluation.return_std)} over `
    + `${evaluation.episodes} episode(s), mean length ${number(evaluation.length_mean, 1)}`
    + protocol + hns;
}

/** The panel for job `jobId`; `start(checkpointId)` evaluates one checkpoint ("best" default). */
export function evaluationPanel(jobId, signal) {
  const episodes = h("input", { id: "eval-episodes", type: "number", min: 1, max: 1000, value: 10 });
  // book: the env as trained; standard (ALE games): sticky actions, 108k-frame cap, whole games.
  const protocol = h("select", { id: "eval-protocol" },
    h("option", { value: "book" }, "book (as trained)"),
    h("option", { value: "standard" }, "standard (sticky actions, whole games)"));
  const button = h("button", { id: "evaluate", type: "button", onclick: () => start("best") },
    "Evaluate best checkpoint");
  const state = h("p", { id: "eval-status", class: "muted" });
  const video = h("video", { id: "eval-video", controls: true, muted: true, loop: true,
    playsinline: true, hidden: true });
  const score = h("div", { id: "eval-score", class: "score" });
  const history = h("tbody");
  let videoUrl = null;

  async function play(evaluation) {
    fill(score, h("strong", {}, number(evaluation.return_mean)),
      h("span", {}, scoreText(evaluation)),
      h("small", { class: "muted" }, `checkpoint ${evaluation.checkpoint_id}`));
    score.dataset.returnMean = evaluation.return_mean;
    if (!evaluation.video) return;
    const content = await blob(`/v1/evaluations/${evaluation.id}/video`, signal);
    if (videoUrl) URL.revokeObjectURL(videoUrl);
    videoUrl = URL.createObjectURL(content);
    video.hidden = false;
    video.src = videoUrl;
    video.play().catch(() => {}); // autoplay may be refused; the controls remain
  }

  async function start(checkpointId) {
    button.disabled = true;
    button.dataset.busy = "1";
    try {
      let evaluation = await post("/v1/evaluations", { job_id: jobId,
        checkpoint_id: checkpointId, episodes: Number(episodes.value), protocol: protocol.value,
        video: true }, signal);
      while (!DONE.has(evaluation.status)) {
        fill(state, "Evaluating ", evaluation.checkpoint_id, " on the cluster: ",
          statusBadge(evaluation.status));
        await sleep(POLL_MS);
        evaluation = await get(`/v1/evaluations/${evaluation.id}`, null, signal);
      }
      fill(state, "Evaluation ", statusBadge(evaluation.status), " ",
        evaluation.status === "SUCCEEDED" ? "" : evaluation.message);
      if (evaluation.status === "SUCCEEDED") await play(evaluation);
      await refresh();
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
      delete button.dataset.busy;
    }
  }

  async function refresh() {
    const all = await get("/v1/evaluations", null, signal);
    const mine = all.filter((e) => e.job_id === jobId);
    fill(history, mine.map((e) => h("tr", {},
      h("td", {}, e.checkpoint_id), h("td", {}, statusBadge(e.status)),
      h("td", { class: "num" }, e.episodes), h("td", { class: "num" }, number(e.return_mean)),
      h("td", {}, e.protocol || ""),
      h("td", { class: "num" }, e.human_normalized == null ? "" : number(e.human_normalized, 3)),
      h("td", {}, e.status === "SUCCEEDED"
        ? h("button", { type: "button", class: "quiet", onclick: () => play(e).catch(report) },
          e.video ? "show" : "score")
        : null))));
  }

  const element = h("section", { class: "evaluation" },
    h("h2", {}, "Evaluate"),
    h("div", { class: "row" }, h("label", {}, "episodes ", episodes),
      h("label", {}, "protocol ", protocol), button),
    state,
    h("div", { class: "player" }, video, score),
    h("details", {}, h("summary", {}, "Earlier evaluations of this job"),
      h("table", {}, h("thead", {}, h("tr", {}, ["checkpoint", "status", "episodes",
        "mean return", "protocol", "human-normalized", ""].map((t) => h("th", {}, t)))), history)));
  /** Evaluating needs a checkpoint: the button says so until the job has one. */
  function setReady(ready) {
    if (!button.dataset.busy) button.disabled = !ready;
    button.title = ready ? "" : "No checkpoint yet";
  }

  refresh().catch(report);
  return { element, start, setReady, close: () => videoUrl && URL.revokeObjectURL(videoUrl) };
}
