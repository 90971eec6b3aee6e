// #/cluster: the Ray cluster's nodes and resources (GET /v1/cluster), refreshed every 5 s.

import { get } from "../api.js";
import { every, fill, h, number, report } from "../dom.js";

const REFRESH_MS = 5000;
const SHOWN = ["CPU", "GPU", "memory"];

function amount(key, value) {
  return key === "memory" || key.endsWith("memory") ? `${(value / 2 ** 30).toFixed(1)} GiB` : number(value);
}

/** "1.5 / 2" when the API reports use, else the total. */
function usage(key, total, used) {
  if (used === undefined) return amount(key, total);
  return `${amount(key, used)} / ${amount(key, total)} in use`;
}

export function show(view) {
  const controller = new AbortController();
  const totals = h("div", { class: "totals", id: "cluster-totals" });
  const nodes = h("tbody");
  const address = h("p", { class: "muted" });
  fill(view, h("h1", {}, "Cluster"), address, totals,
    h("table", { id: "nodes" }, h("thead", {}, h("tr", {},
      ["node", "ip", "state", "role", ...SHOWN].map((t) => h("th", {}, t)))), nodes));

  async function refresh() {
    try {
      const cluster = await get("/v1/cluster", null, controller.signal);
      const used = cluster.resources_used || {};
      fill(address, `Ray at ${cluster.address} · ${cluster.nodes.length} node(s)`);
      fill(totals, SHOWN.filter((k) => k in cluster.resources || k === "GPU").map((k) =>
        h("div", { class: "total", dataset: { resource: k } }, h("span", {}, k),
          h("strong", {}, usage(k, cluster.resources[k] ?? 0, used[k])))));
      fill(nodes, cluster.nodes.map((node) => h("tr", {},
        h("td", {}, h("code", { title: node.id }, node.id.slice(0, 12))), h("td", {}, node.ip),
        h("td", {}, node.state), h("td", {}, node.is_head ? "head" : "worker"),
        SHOWN.map((k) => h("td", { class: "num" }, amount(k, node.resources[k] ?? 0))))));
    } catch (error) {
      report(error);
    }
  }

  return every(REFRESH_MS, refresh, controller);
}
