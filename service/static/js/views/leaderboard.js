// #/leaderboard: the best evaluated checkpoints you may see (yours and shared ones), ranked
// within each env and ALE game (by human-normalized score where the game has one), with the
// protocol each was played under (GET /v1/leaderboard); download one.

import { blob, get, saveBlob } from "../api.js";
import { fill, h, number, report } from "../dom.js";

export function show(view) {
  const controller = new AbortController();
  const envSelect = h("select", { id: "leaderboard-env", onchange: () => refresh() },
    h("option", { value: "" }, "every env"));
  const gameInput = h("input", { id: "leaderboard-game", type: "search", placeholder: "any game",
    onchange: () => refresh() });
  const body = h("tbody");
  fill(view, h("div", { class: "title-row" }, h("h1", {}, "Leaderboard"),
    h("label", {}, "Env ", envSelect), h("label", {}, "Game ", gameInput)),
  h("p", { class: "muted" }, "Each checkpoint's best evaluation: evaluate a checkpoint from its "
    + "job's page to enter it."),
  h("table", { id: "leaderboard" }, h("thead", {}, h("tr", {}, ["return", "±",
    "human-normalized", "episodes", "protocol", "env", "game", "algorithm", "job", "checkpoint", "owner", ""].map((t) => h("th", {}, t)))), body));

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
      const query = { env: envSelect.value, game: gameInput.value.trim() };
      const entries = await get("/v1/leaderboard", query, controller.signal);
      fill(body, entries.map((e) => h("tr", {},
        h("td", { class: "num" }, h("strong", {}, number(e.return_mean))),
        h("td", { class: "num" }, number(e.return_std)),
        h("td", { class: "num" }, e.human_normalized == null ? "-" : number(e.human_normalized, 3)),
        h("td", { class: "num" }, e.episodes), h("td", {}, e.protocol),
        h("td", {}, e.env), h("td", {}, e.game || ""), h("td", {}, e.algorithm),
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
