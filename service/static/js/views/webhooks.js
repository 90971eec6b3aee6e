// #/webhooks: URLs that get every status change of your jobs and evaluations (signed JSON),
// and each one's delivery log.

import { get, patch, post, remove } from "../api.js";
import { age, fill, h, report } from "../dom.js";

export function show(view) {
  const controller = new AbortController();
  const url = h("input", { id: "webhook-url", type: "url", size: 50,
    placeholder: "https://example.org/rldojo-hook" });
  const created = h("p", { id: "webhook-secret", class: "notice-good", hidden: true });
  const body = h("tbody");
  const log = h("section", { id: "deliveries" });
  const form = h("form", { class: "row", onsubmit: (event) => { event.preventDefault(); add(); } },
    h("label", {}, "URL ", url), h("button", { type: "submit" }, "Add webhook"));
  fill(view, h("h1", {}, "Webhooks"),
    h("p", { class: "muted" }, "Each status change is POSTed as JSON with X-Rldojo-Signature: "
      + "sha256=<HMAC-SHA256 of the body with the webhook's secret>, retried until a 2xx answer. "
      + "URLs are https at a public address unless the operator allows more; a webhook whose "
      + "deliveries keep failing is disabled until you enable it again."),
    form, created,
    h("table", { id: "webhooks" }, h("thead", {}, h("tr", {}, ["id", "url", "state", "created", ""]
      .map((t) => h("th", {}, t)))), body), log);

  async function add() {
    try {
      const hook = await post("/v1/webhooks", { url: url.value.trim() }, controller.signal);
      fill(created, "Added ", h("code", {}, hook.id), ". Its signing secret (shown this once): ",
        h("code", {}, hook.secret));
      created.hidden = false;
      url.value = "";
      await refresh();
    } catch (error) {
      report(error);
    }
  }

  async function showLog(hook) {
    const deliveries = await get(`/v1/webhooks/${hook.id}/deliveries`, null, controller.signal);
    fill(log, h("h2", {}, `Deliveries to ${hook.url}`), h("table", {},
      h("thead", {}, h("tr", {}, ["event", "what", "state", "tries", "last answer", "when"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, deliveries.map((d) => {
        const subject = d.payload.job || d.payload.evaluation || {};
        return h("tr", {}, h("td", {}, d.event),
          h("td", {}, `${subject.id} → ${subject.status}`), h("td", {}, d.state),
          h("td", { class: "num" }, d.attempts),
          h("td", {}, d.last_error || (d.last_status ? `HTTP ${d.last_status}` : "")),
          h("td", {}, age(d.created_at)));
      }))));
  }

  function health(hook) {
    if (!hook.enabled) return `disabled ${age(hook.disabled_at)}: ${hook.disabled_reason || ""}`;
    return hook.consecutive_failures ? `enabled (${hook.consecutive_failures} failed in a row)`
      : "enabled";
  }

  async function refresh() {
    try {
      const hooks = await get("/v1/webhooks", null, controller.signal);
      fill(body, hooks.map((hook) => h("tr", {}, h("td", {}, h("code", {}, hook.id)),
        h("td", {}, hook.url), h("td", { class: "webhook-state" }, health(hook)),
        h("td", {}, age(hook.created_at)),
        h("td", {}, h("button", { type: "button", class: "quiet",
          onclick: () => showLog(hook).catch(report) }, "Deliveries"), " ",
        h("button", { type: "button", class: "quiet",
          onclick: () => patch(`/v1/webhooks/${hook.id}`, { enabled: !hook.enabled },
            controller.signal).then(refresh).catch(report) },
        hook.enabled ? "Disable" : "Enable"), " ",
        h("button", { type: "button", class: "danger",
          onclick: () => remove(`/v1/webhooks/${hook.id}`).then(refresh).catch(report) },
        "Remove")))));
    } catch (error) {
      report(error);
    }
  }

  refresh();
  return () => controller.abort();
}
