// The page's only way to the server: the /v1 API with the bearer token the user pasted.
// The token lives in sessionStorage (this tab only, gone when it closes).

const TOKEN_KEY = "rldojo.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A non-2xx answer: `status` and the server's `detail` (a message or a list of field errors). */
export class APIError extends Error {
  constructor(status, detail) {
    super(APIError.describe(status, detail));
    this.status = status;
    this.detail = detail;
  }

  static describe(status, detail) {
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    }
    return `HTTP ${status}: ${detail ?? "no detail"}`;
  }

  /** Field errors of a 422 as [{field: "config.alpha", msg}] (the leading "body" dropped). */
  fieldErrors() {
    if (!Array.isArray(this.detail)) return [];
    return this.detail.map((d) => {
      const loc = (d.loc || []).map(String);
      return { field: (loc[0] === "body" ? loc.slice(1) : loc).join("."), msg: d.msg };
    });
  }
}

const unauthorisedListeners = new Set();

/** Call `listener()` whenever the server answers 401 (no or a wrong token). */
export function onUnauthorised(listener) {
  unauthorisedListeners.add(listener);
}

function url(path, params) {
  const target = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

function headers(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

async function failure(response) {
  let detail;
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = response.statusText;
  }
  if (response.status === 401) unauthorisedListeners.forEach((listener) => listener());
  return new APIError(response.status, detail);
}

/** fetch() with the token; throws APIError on a non-2xx answer. */
export async function request(method, path, { params, json, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(url(path, params), init);
  if (!response.ok) throw await failure(response);
  return response;
}

export const get = async (path, params, signal) =>
  (await request("GET", path, { params, signal })).json();
export const post = async (path, json, signal) =>
  (await request("POST", path, { json, signal })).json();
export const patch = async (path, json, signal) =>
  (await request("PATCH", path, { json, signal })).json();
export const remove = (path, params) => request("DELETE", path, { params });
export const blob = async (path, signal) => (await request("GET", path, { signal })).blob();

/**
 * Read a server-sent event stream (`?follow=true`) with fetch(), because EventSource cannot
 * send the Authorization header. Calls `onEvent(name, data)` per event; resolves at the end.
 */
export async function follow(path, onEvent, signal) {
  const response = await request("GET", path, { params: { follow: "true" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event) onEvent(event.name, event.data);
    }
  }
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return data.length ? { name, data: JSON.parse(data.join("\n")) } : null; // ": keep-alive"
}

/** Save a blob under `filename` through a temporary link (downloads need the token too). */
export function saveBlob(content, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(content);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
