// #/new: the submit form, built from GET /v1/algorithms (the JSON schema of each algorithm's
// settings) and filled with the settings the service would really use for the chosen
// algorithm and env (POST /v1/jobs/validate: presets applied). Every field error of a 422 is
// shown at once, beside its field and in a summary by the Submit button, and the first bad
// field gets the focus.

import { APIError, get, post } from "../api.js";
import { fill, h, notice, report } from "../dom.js";

// Fields outside the algorithm's settings: [spec path, label, kind, hint].
const GENERAL = [
  ["stop.iterations", "stop after iterations", "json", "Training stops at the first criterion met."],
  ["stop.env_steps", "stop after env steps", "json", ""],
  ["stop.return_mean", "stop at mean return", "json", ""],
  ["stop.seconds", "stop after seconds", "json", ""],
  ["seed", "seed", "json", "Seeds envs, torch and numpy."],
  ["resources.env_runners", "workers (EnvRunners)", "json", "Parallel sampling processes."],
  ["checkpoint.every", "checkpoint every (iterations)", "json", ""],
  ["env_config", "env config (JSON)", "json", "Arguments of the env, e.g. {\"size\": 5}."],
  ["priority", "priority", "priority", "The queue's order; high preempts lower jobs."],
  ["name", "name", "string", ""],
  ["tags", "tags", "tags", "Comma-separated, e.g. cartpole, baseline."],
  ["shared", "shared", "boolean", "Every user may read, compare and pull it."],
];

/** The schema's type of a property ("number", "integer", "boolean", "string", ...). */
function typeOf(schema) {
  if (schema.type) return schema.type;
  const option = (schema.anyOf || []).find((s) => s.type && s.type !== "null");
  return option ? option.type : "json";
}

const shown = (value) => (value === null || value === undefined ? ""
  : typeof value === "object" ? JSON.stringify(value) : String(value));

/** Text from an input as the JSON value the API expects; unparsable text goes as it is. */
function parse(text, type) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  if (type === "string") return trimmed;
  try {
    return JSON.parse(trimmed);
  } catch {
    return trimmed; // the API names the field and says why
  }
}

function field(path, label, input, hint) {
  return h("div", { class: "field", dataset: { field: path } },
    h("label", { for: `f-${path}` }, label), input,
    h("span", { class: "field-error", role: "alert" }),
    hint ? h("small", { class: "hint" }, hint) : null);
}

function range(schema) {
  const bounds = [];
  for (const [key, sign] of [["minimum", "≥"], ["exclusiveMinimum", ">"], ["maximum", "≤"],
    ["exclusiveMaximum", "<"]]) {
    const value = schema[key] ?? (schema.anyOf || []).map((s) => s[key]).find((v) => v !== undefined);
    if (value !== undefined) bounds.push(`${sign} ${value}`);
  }
  return bounds.join(", ");
}

function configInput(name, schema) {
  const type = typeOf(schema);
  const id = `f-config.${name}`;
  name = `config.${name}`;
  if (schema.enum) {
    return h("select", { id, name }, schema.enum.map((option) => h("option", { value: option },
      option)));
  }
  if (type === "boolean") return h("input", { id, name, type: "checkbox" });
  return h("input", { id, name, type: "text", spellcheck: "false",
    inputmode: type === "integer" || type === "number" ? "decimal" : null });
}

function generalInput(path, kind) {
  const id = `f-${path}`;
  if (kind === "priority") {
    return h("select", { id, name: path }, ["normal", "high", "low"].map((p) =>
      h("option", { value: p }, p)));
  }
  if (kind === "boolean") return h("input", { id, name: path, type: "checkbox" });
  return h("input", { id, name: path, type: "text", spellcheck: "false",
    value: path === "env_config" ? "{}" : "" });
}

function setValue(input, value) {
  if (input.type === "checkbox") input.checked = value === true;
  else input.value = shown(value);
}

export function show(view) {
  const controller = new AbortController();
  fill(view, h("h1", {}, "New job"), h("p", { class: "muted" }, "Loading algorithms…"));
  Promise.all([get("/v1/algorithms", null, controller.signal),
    get("/v1/envs", null, controller.signal)])
    .then(([algorithms, envs]) => render(view, algorithms, envs, controller.signal))
    .catch(report);
  return () => controller.abort();
}

function render(view, algorithms, envs, signal) {
  const byName = new Map(algorithms.map((a) => [a.name, a]));
  const algorithmSelect = h("select", { id: "f-algorithm", name: "algorithm" },
    algorithms.map((a) => h("option", { value: a.name }, `${a.name} (${a.book_section})`)));
  algorithmSelect.value = byName.has("q_learning") ? "q_learning" : algorithms[0].name;
  const envSelect = h("select", { id: "f-env", name: "env" });
  const configBox = h("fieldset", { class: "config" });
  const summary = h("p", { class: "muted" });
  const defaultsNote = h("p", { class: "hint", id: "defaults-note" });
  const submitButton = h("button", { type: "submit" }, "Submit");
  const errorSummary = h("div", { id: "error-summary", class: "error-summary", role: "alert",
    hidden: true });
  const form = h("form", { id: "submit-form", novalidate: true },
    h("div", { class: "columns" },
      h("fieldset", {}, h("legend", {}, "What to train"),
        field("algorithm", "algorithm", algorithmSelect), summary,
        field("env", "environment", envSelect),
        GENERAL.map(([path, label, kind, hint]) => field(path, label, generalInput(path, kind),
          hint))),
      configBox),
    h("div", { class: "submit-row" }, submitButton, errorSummary));
  let defaults = {}; // the settings the service uses for this algorithm and env
  let loading = null;

  function input(path) {
    return form.elements.namedItem(path);
  }

  function readConfig(algorithm) {
    const config = {};
    for (const [name, schema] of Object.entries(algorithm.config_schema.properties || {})) {
      const box = input(`config.${name}`);
      const value = box.type === "checkbox" ? box.checked
        : parse(box.value, schema.enum ? "string" : typeOf(schema));
      const unchanged = JSON.stringify(value ?? null) === JSON.stringify(defaults[name] ?? null);
      if (!unchanged && value !== undefined) config[name] = value;
    }
    return config;
  }

  function readSpec(algorithm) {
    const spec = { algorithm: algorithm.name, env: envSelect.value, config: readConfig(algorithm) };
    for (const [path, , kind] of GENERAL) {
      const box = input(path);
      let value;
      if (kind === "boolean") value = box.checked || undefined;
      else if (kind === "tags") {
        value = box.value.split(",").map((t) => t.trim()).filter(Boolean);
        if (!value.length) value = undefined;
      } else if (kind === "priority" || kind === "string") value = box.value.trim() || undefined;
      else value = parse(box.value, kind);
      if (value === undefined) continue;
      const [head, tail] = path.split(".");
      if (tail) spec[head] = { ...(spec[head] || {}), [tail]: value };
      else spec[head] = value;
    }
    return spec;
  }

  /** Fill the settings with what the service would use for this algorithm on this env. */
  async function loadDefaults() {
    const algorithm = byName.get(algorithmSelect.value);
    const asked = { algorithm: algorithm.name, env: envSelect.value };
    loading = asked;
    try {
      const checked = await post("/v1/jobs/validate", asked, signal);
      if (loading !== asked) return; // a later choice won
      defaults = checked.hyperparameters;
      for (const [name, value] of Object.entries(defaults)) {
        const box = input(`config.${name}`);
        if (box && !box.dataset.edited) setValue(box, value); // what the user typed stays
      }
      const stops = Object.entries(checked.spec.stop).filter(([, v]) => v !== null);
      for (const key of ["iterations", "env_steps", "return_mean", "seconds"]) {
        const found = stops.find(([k]) => k === key);
        input(`stop.${key}`).placeholder = found ? `${found[1]} (default)` : "";
      }
      const stop = stops.map(([k, v]) => `${k} ${v}`).join(", ");
      input("resources.env_runners").placeholder = String(checked.resolved_config.num_env_runners);
      fill(defaultsNote, `Filled in: ${algorithm.name}'s settings for ${envSelect.value}. `
        + `With no stop given it stops at ${stop}.`);
    } catch (error) {
      report(error);
    }
  }

  function chooseAlgorithm() {
    const algorithm = byName.get(algorithmSelect.value);
    summary.textContent = algorithm.summary;
    // Every env this cluster can make that the algorithm trains on (the book's first).
    const usable = envs.filter((e) => e.algorithms.includes(algorithm.name)).map((e) => e.id);
    fill(envSelect, usable.map((id) => h("option", { value: id, selected: id === algorithm.default_env }, id)));
    const properties = algorithm.config_schema.properties || {};
    fill(configBox, h("legend", {}, `${algorithm.name} settings`), defaultsNote,
      Object.entries(properties).map(([name, schema]) => field(`config.${name}`, name,
        configInput(name, schema), [schema.description, range(schema)].filter(Boolean).join(" "))));
    clearErrors();
    return loadDefaults();
  }

  /** Every field error beside its field (or the nearest enclosing one), all listed by Submit. */
  function showErrors(errors) {
    const listed = [];
    let first = null;
    for (const { field: path, msg } of errors) {
      let parts = path.split(".");
      let box = null;
      while (parts.length && !box) {
        box = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
        parts = parts.slice(0, -1);
      }
      if (box) {
        box.classList.add("invalid");
        const place = box.querySelector(".field-error");
        place.textContent = place.textContent ? `${place.textContent}; ${msg}` : msg;
        first = first || box.querySelector("input, select");
      }
      listed.push(h("li", {}, h("code", {}, path || "spec"), `: ${msg}`));
    }
    fill(errorSummary, h("strong", {}, `${errors.length} problem(s) to fix:`), h("ul", {}, listed));
    errorSummary.hidden = false;
    if (first) first.focus();
  }

  function clearErrors() {
    form.querySelectorAll(".field.invalid").forEach((box) => {
      box.classList.remove("invalid");
      box.querySelector(".field-error").textContent = "";
    });
    errorSummary.hidden = true;
    notice("");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    submitButton.disabled = true;
    try {
      const job = await post("/v1/jobs", readSpec(byName.get(algorithmSelect.value)));
      window.location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      if (error instanceof APIError && error.status === 422) showErrors(error.fieldErrors());
      else report(error);
    } finally {
      submitButton.disabled = false;
    }
  });
  configBox.addEventListener("input", (event) => { event.target.dataset.edited = "1"; });
  algorithmSelect.addEventListener("change", chooseAlgorithm);
  envSelect.addEventListener("change", () => { clearErrors(); loadDefaults(); });
  fill(view, h("h1", {}, "New job"), form);
  chooseAlgorithm();
}
