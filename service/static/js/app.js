// The page's entry point: a hash router over the views and the token gate.
//   #/jobs  #/jobs/<id>  #/new  #/compare/<id,id>  #/leaderboard  #/webhooks  #/cluster

import { onUnauthorised, token } from "./api.js";
import { fill, h, notice } from "./dom.js";
import * as cluster from "./views/cluster.js";
import * as compare from "./views/compare.js";
import * as job from "./views/job.js";
import * as jobs from "./views/jobs.js";
import * as leaderboard from "./views/leaderboard.js";
import * as submit from "./views/submit.js";
import * as webhooks from "./views/webhooks.js";

const ROUTES = [
  [/^#\/jobs\/([\w-]+)$/, job],
  [/^#\/new$/, submit],
  [/^#\/compare\/([\w,-]+)$/, compare],
  [/^#\/leaderboard$/, leaderboard],
  [/^#\/webhooks$/, webhooks],
  [/^#\/cluster$/, cluster],
  [/^#\/jobs$/, jobs],
];

const view = document.getElementById("view");
let leave = null; // the current view's clean-up (closes its streams and timers)

function route() {
  if (leave) leave();
  leave = null;
  notice("");
  const hash = window.location.hash || "#/jobs";
  for (const [pattern, module] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      document.querySelectorAll("nav a").forEach((a) => {
        a.classList.toggle("current", hash.startsWith(a.getAttribute("href")));
      });
      leave = module.show(view, ...match.slice(1)) || null;
      return;
    }
  }
  window.location.hash = "#/jobs";
}

/** Replace the view with the token form; `refused` says the last token was not accepted. */
function askForToken(refused) {
  const shown = view.querySelector(".token-form");
  if (shown && shown.dataset.refused === String(refused)) return; // several requests failed
  if (leave) leave();
  leave = null;
  notice("");
  const input = h("input", { id: "token", type: "password", autocomplete: "off",
    placeholder: "API token", required: true, size: 40 });
  const message = refused
    ? h("p", { class: "error", id: "auth-error", role: "alert" },
      "Not authorised: the server refused this token. Paste a valid API token.")
    : h("p", {}, "Paste your API token (one of the server's RLDOJO_API_TOKENS).");
  const form = h("form", { class: "token-form", dataset: { refused }, onsubmit: (event) => {
    event.preventDefault();
    token.set(input.value);
    route();
  } }, h("h1", {}, "Sign in"), message, h("label", {}, "Token ", input),
  h("button", { type: "submit" }, "Use token"),
  h("p", { class: "muted" }, "Kept in this tab's session storage only."));
  fill(view, form);
  input.focus();
}

onUnauthorised(() => askForToken(Boolean(token.get())));
document.getElementById("change-token").addEventListener("click", () => {
  token.clear();
  askForToken(false);
});
window.addEventListener("hashchange", route);
route();
