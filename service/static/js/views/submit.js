// #/new: the submit form, built from GET /v1/algorithms (defaults + JSON schema) and /v1/envs.
// Values go to the API as typed; its 422 field errors are shown beside the fields they name.

import { APIError, get, post } from "../api.js";
import { fill, h, notice, report } from "../dom.js";

// Fields outside the algorithm's config: [spec path, label, default, hint].
const GENERAL = [
  ["stop.iterations", "stop after iterations", "20", "Training stops at the first criterion met."],
  ["stop.env_steps", "stop after env steps", "", ""],
  ["stop.return_mean", "stop at mean return", "", ""],
  ["stop.seconds", "stop after seconds", "", ""],
  ["seed", "seed", "", "Seeds envs, torch and numpy."],
  ["checkpoint.every", "checkpoint every (iterations)", "10", ""],
  ["env_config", "env config (JSON)", "{}", "Arguments of the env, e.g. {\"size\": 5}."],
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

function configInput(name, schema, value) {
  const type = typeOf(schema);
  const id = `f-config.${name}`;
  name = `config.${name}`;
  if (schema.enum) {
    return h("select", { id, name }, schema.enum.map((option) =>
      h("option", { value: option, selected: option === value }, option)));
  }
  if (type === "boolean") return h("input", { id, name, type: "checkbox", checked: value === true });
  return h("input", { id, name, type: "text", value: shown(value), spellcheck: "false",
    inputmode: type === "integer" || type === "number" ? "decimal" : null });
}

function readConfig(form, algorithm) {
  const config = {};
  for (const [name, schema] of Object.entries(algorithm.config_schema.properties || {})) {
    const input = form.elements.namedItem(`config.${name}`);
    const value = input.type === "checkbox" ? input.checked
      : parse(input.value, schema.enum ? "string" : typeOf(schema));
    const unchanged = JSON.stringify(value ?? null) === JSON.stringify(algorithm.default_config[name]);
    if (!unchanged && value !== undefined) config[name] = value;
  }
  return config;
}

function readSpec(form, algorithm) {
  const spec = { algorithm: algorithm.name, env: form.elements.namedItem("env").value,
    config: readConfig(form, algorithm) };
  for (const [path] of GENERAL) {
    const value = parse(form.elements.namedItem(path).value, "json");
    if (value === undefined) continue;
    const [head, tail] = path.split(".");
    if (tail) spec[head] = { ...(spec[head] || {}), [tail]: value };
    else spec[head] = value;
  }
  return spec;
}

/** Put each field error beside its field (or the nearest enclosing one); the rest on top. */
function showErrors(form, errors) {
  const unplaced = [];
  for (const { field: path, msg } of errors) {
    let parts = path.split(".");
    let box = null;
    while (parts.length && !box) {
      box = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
      parts = parts.slice(0, -1);
    }
    if (box) {
      box.classList.add("invalid");
      box.querySelector(".field-error").textContent = msg;
    } else {
      unplaced.push(`${path}: ${msg}`);
    }
  }
  notice(unplaced.join("; "));
}

function clearErrors(form) {
  form.querySelectorAll(".field.invalid").forEach((box) => {
    box.classList.remove("invalid");
    box.querySelector(".field-error").textContent = "";
  });
  notice("");
}

export function show(view) {
  const controller = new AbortController();
  fill(view, h("h1", {}, "New job"), h("p", { class: "muted" }, "Loading algorithms…"));
  Promise.all([get("/v1/algorithms", null, controller.signal),
    get("/v1/envs", null, controller.signal)])
    .then(([algorithms, envs]) => render(view, algorithms, envs))
    .catch(report);
  return () => controller.abort();
}

function render(view, algorithms, envs) {
  const byName = new Map(algorithms.map((a) => [a.name, a]));
  const algorithmSelect = h("select", { id: "f-algorithm", name: "algorithm" },
    algorithms.map((a) => h("option", { value: a.name }, `${a.name} (${a.book_section})`)));
  algorithmSelect.value = byName.has("q_learning") ? "q_learning" : algorithms[0].name;
  const envSelect = h("select", { id: "f-env", name: "env" });
  const configBox = h("fieldset", { class: "config" });
  const summary = h("p", { class: "muted" });
  const submitButton = h("button", { type: "submit" }, "Submit");
  const form = h("form", { id: "submit-form", novalidate: true },
    h("div", { class: "columns" },
      h("fieldset", {}, h("legend", {}, "What to train"),
        field("algorithm", "algorithm", algorithmSelect), summary,
        field("env", "environment", envSelect),
        GENERAL.map(([path, label, value, hint]) => field(path, label,
          h("input", { id: `f-${path}`, name: path, type: "text", value, spellcheck: "false" }),
          hint))),
      configBox),
    submitButton);

  function choose() {
    const algorithm = byName.get(algorithmSelect.value);
    summary.textContent = algorithm.summary;
    const usable = envs.filter((e) => algorithm.envs.includes(e.id)).map((e) => e.id);
    fill(envSelect, usable.map((id) => h("option", { value: id, selected: id === algorithm.default_env }, id)));
    const properties = algorithm.config_schema.properties || {};
    fill(configBox, h("legend", {}, `${algorithm.name} hyperparameters (defaults filled in)`),
      Object.entries(properties).map(([name, schema]) => field(`config.${name}`, name,
        configInput(name, schema, algorithm.default_config[name]), schema.description)));
    clearErrors(form);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    submitButton.disabled = true;
    try {
      const job = await post("/v1/jobs", readSpec(form, byName.get(algorithmSelect.value)));
      window.location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      if (error instanceof APIError && error.status === 422) showErrors(form, error.fieldErrors());
      else report(error);
    } finally {
      submitButton.disabled = false;
    }
  });
  algorithmSelect.addEventListener("change", choose);
  fill(view, h("h1", {}, "New job"), form);
  choose();
}
