// Small helpers to build elements and format numbers; no framework.

/**
 * h("td", {class: "num"}, "3") builds an element. Attributes starting with "on" are listeners;
 * `dataset` is an object of data-* values; children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${String(status).toLowerCase()}` }, status);
}

const ACTIVE = new Set(["QUEUED", "PENDING", "RUNNING", "STOPPING"]);
export const isActive = (status) => ACTIVE.has(status);

/** 1234567 -> "1.23M"; small numbers keep up to `digits` decimals; null -> "–". */
export function number(value, digits = 2) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const size = Math.abs(value);
  if (size >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (size >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

/** An ISO time as "12 s ago", "5 min ago", "3 h ago" or "2 d ago". */
export function age(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** The page-wide message line (errors that belong to no field). */
export function notice(message, kind = "error") {
  const element = document.getElementById("notice");
  element.hidden = !message;
  element.className = kind;
  element.textContent = message || "";
}

/** Show a failed request's message, unless it was cancelled or the token form took over. */
export function report(error) {
  if (error.name === "AbortError" || error.status === 401) return;
  notice(error.message || String(error));
}

// Runs `refresh` now and every `ms`; the returned function (a view's clean-up) stops it and
// aborts the view's requests still in flight.
export function every(ms, refresh, controller) {
  refresh();
  const timer = setInterval(refresh, ms);
  return () => {
    clearInterval(timer);
    controller.abort();
  };
}
