// The page runtime: picks a runtime (LiteRT.js or TensorFlow.js), a variant and the runtime's
// options (tfjs backend; LiteRT.js accelerator and threads), all remembered in the URL; loads
// the variant's deploy manifest and model through the runtime's page module; and hands the experiment's
// widget a context to predict with.
//
// A widget is an ES module exporting `mount(root, ctx)`; ctx has
//   manifest                  the deploy manifest of the loaded variant
//   predict(inputs, {extra})  inputs: {name: {data: number[] | TypedArray, shape: number[]}};
//                             resolves to {name: {data: TypedArray, shape}} for every output,
//                             plus the intermediate layers named in `extra` when the model has them
//   openPage(experiment)      another page's model of this site, on the same runtime:
//                             resolves to {manifest, predict, page} or null
//   runtime                   the runtime's name ("litertjs", "tfjs")
const config = JSON.parse(document.getElementById("tinkerflow-config").textContent);
const params = new URLSearchParams(location.search);
const stats = { started: performance.now(), firstPredictionMs: null, lastPredictionMs: null, predictions: 0 };
const PLAIN = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;  // site.json is data: only plain folder names make URLs
const modules = {};  // runtime name -> its page module, imported when first used: {options, supported(), open()}
window.tinkerflow = { stats, config };

function showError(message) {
  const box = document.getElementById("error");
  box.hidden = false;
  box.textContent = message;
}

function showNote(message) {
  const box = document.getElementById("note");
  box.hidden = false;
  box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
}

function fillSelect(select, entries, chosen) {
  select.replaceChildren();
  for (const [value, text] of entries) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    option.selected = value === chosen;
    select.append(option);
  }
}

function reloadWith(key, value) {
  const next = new URLSearchParams(location.search);
  if (value) next.set(key, value); else next.delete(key);
  if (key === "runtime") { next.delete("variant"); }
  location.search = next.toString();
}

function count(timing) {
  stats.lastPredictionMs = timing;
  stats.predictions += 1;
  if (stats.firstPredictionMs === null) {
    stats.firstPredictionMs = performance.now();  // since the page was requested
    document.body.dataset.firstPredictionMs = stats.firstPredictionMs.toFixed(2);
  }
  document.body.dataset.lastPredictionMs = timing.toFixed(3);
  document.body.dataset.predictions = String(stats.predictions);
  document.getElementById("timing").textContent = `${timing.toFixed(2)} ms`;
}

// A page downloads only the runtime it runs: a runtime's module (and through it its wasm) is
// imported when that runtime is tried, never at load for the menu.
function runtimeModule(runtime) {
  if (!modules[runtime.name]) modules[runtime.name] = import(new URL(runtime.module, location.href).href);
  return modules[runtime.name];
}

async function openModel(runtime, base, options) {
  const manifest = await (await fetch(`${base}manifest.json`)).json();
  const model = await (await runtimeModule(runtime)).open(new URL(base, location.href).href, manifest, options);
  async function predict(inputs, extra = {}) {
    for (const input of manifest.inputs) {
      if (!inputs[input.name]) throw new Error(`missing input ${input.name}`);
    }
    const start = performance.now();
    const result = await model.run(inputs, extra.extra || []);
    count(performance.now() - start);
    return result;
  }
  return { manifest, model, predict };
}

async function start(runtime, variant, options) {
  const loaded = await openModel(runtime, `${runtime.folder}/${variant}/`, options);
  document.getElementById("backend-used").textContent = `${runtime.label}, ${loaded.model.backend}`;
  document.body.dataset.runtime = runtime.name;
  document.body.dataset.backend = loaded.model.backend;
  document.body.dataset.variant = variant;
  return loaded;
}

// The runtimes in the order they are tried: the one the URL names, the page's default, the rest.
function preferred() {
  const wanted = params.get("runtime");
  const order = [wanted, config.default_runtime, ...config.runtimes.map((r) => r.name)];
  return [...new Set(order.map((name) => config.runtimes.find((r) => r.name === name)).filter(Boolean))];
}

// The first runtime of `candidates` this browser can run (each module imported only when tried).
async function firstSupported(candidates) {
  for (const r of candidates) {
    if ((await runtimeModule(r)).supported()) return r;
    showNote(`This browser cannot run ${r.label} (it needs WebAssembly).`);
  }
  return null;
}

// The model page's embed snippet, with this page's own address: it is right wherever the site is hosted.
function showSnippet() {
  const code = document.getElementById("embed-snippet");
  if (!code || !config.embed) return;
  const src = new URL("embed.html", location.href).href.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  code.textContent = config.embed.snippet.replace("{src}", src);
  document.getElementById("embed-copy").addEventListener("click", async (event) => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      event.target.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(code);  // no clipboard here: selected for Ctrl-C
    }
  });
}

async function main() {
  showSnippet();
  const order = preferred();
  let runtime = await firstSupported(order);
  if (!runtime) throw new Error("no runtime of this page can run in this browser");
  const wanted = params.get("runtime");
  if (wanted && !config.runtimes.some((r) => r.name === wanted)) {
    showNote(`The ${wanted} runtime has no usable export for this model; using ${runtime.label}.`);
  }
  const usable = config.runtimes;
  for (const note of config.notes || []) showNote(`${note}.`);

  const runtimeSelect = document.getElementById("runtime");
  fillSelect(runtimeSelect, usable.map((r) => [r.name, r.label]), runtime.name);
  runtimeSelect.addEventListener("change", () => reloadWith("runtime", runtimeSelect.value));

  const pickVariant = (r) => (r.variants.some((v) => v.name === params.get("variant")) ? params.get("variant") : r.default_variant);
  let variant = pickVariant(runtime);
  const variantSelect = document.getElementById("variant");
  const fillVariants = () => fillSelect(variantSelect, runtime.variants.map((v) => [v.name, `${v.name} (${v.bytes.toLocaleString()} B)`]), variant);
  fillVariants();
  variantSelect.addEventListener("change", () => reloadWith("variant", variantSelect.value));

  const options = {};
  const menus = document.getElementById("options");
  menus.replaceChildren();
  for (const option of menuOptions(await runtimeModule(runtime))) {
    const label = document.createElement("label");
    const select = document.createElement("select");
    select.id = `option-${option.key}`;
    const chosen = params.get(option.key) || "";
    fillSelect(select, option.values.map((v) => [v, v || "auto"]), option.values.includes(chosen) ? chosen : option.values[0]);
    select.addEventListener("change", () => reloadWith(option.key, select.value));
    label.append(`${option.label} `, select);
    menus.append(label);
    options[option.key] = select.value;
  }

  let loaded;
  try {
    loaded = await start(runtime, variant, options);
  } catch (err) {
    const fallback = await firstSupported(order.filter((r) => r !== runtime));
    if (!fallback) throw err;
    showNote(`${runtime.label} could not run this model (${err && err.message ? err.message : err}); using ${fallback.label} instead.`);
    runtime = fallback;
    variant = runtime.default_variant;
    fillSelect(runtimeSelect, usable.map((r) => [r.name, r.label]), runtime.name);
    fillVariants();
    loaded = await start(runtime, variant, {});
  }
  if (loaded.model.note) showNote(loaded.model.note);
  if (loaded.model.check) document.body.dataset.acceleratorCheck = JSON.stringify(loaded.model.check);
  if (Number(options.threads) > 1 && loaded.model.threads === 1) {
    showNote("More threads need a cross-origin isolated page (COOP/COEP headers); running one thread.");
  }

  async function openPage(experiment) {
    const site = await fetch("../../site.json").then((r) => (r.ok ? r.json() : { pages: [] })).catch(() => ({ pages: [] }));
    const page = (site.pages || []).find((p) => p.experiment === experiment && PLAIN.test(String(p.slug)));
    if (!page) return null;
    const choices = (page.runtimes || []).filter((r) => PLAIN.test(String(r.folder)) && PLAIN.test(String(r.default_variant)));
    const choice = choices.find((r) => r.name === runtime.name) || choices[0];
    const other = choice && config.runtimes.find((r) => r.name === choice.name);
    if (!other) return null;
    const opened = await openModel(other, `../${page.slug}/${choice.folder}/${choice.default_variant}/`, options);
    return { manifest: opened.manifest, predict: opened.predict, page };
  }

  window.tinkerflow.predict = loaded.predict;
  // `tinkerflow bench --browser`: warm timings of the loaded model on given inputs
  // (per call, in groups of calls lasting at least 5 ms: browsers coarsen their clocks)
  window.tinkerflow.bench = async ({ inputs, repeats }) => {
    for (let i = 0; i < 3; i++) await loaded.model.run(inputs);
    let calls = 1;
    for (;;) {
      const begin = performance.now();
      for (let i = 0; i < calls; i++) await loaded.model.run(inputs);
      if (performance.now() - begin >= 5 || calls >= 4096) break;
      calls *= 2;
    }
    const times = [];
    for (let r = 0; r < repeats; r++) {
      const begin = performance.now();
      for (let i = 0; i < calls; i++) await loaded.model.run(inputs);
      times.push((performance.now() - begin) / calls);
    }
    return { times, calls, runtime: runtime.name, variant, backend: loaded.model.backend };
  };

  let widget;
  try {
    widget = await import(WIDGET_URL);
  } catch (err) {
    throw new WidgetError(err, "could not be loaded");
  }
  if (typeof widget.mount !== "function") throw new WidgetError(new Error("it exports no mount(root, ctx)"), "failed");
  try {
    await widget.mount(document.getElementById("widget"), {
      manifest: loaded.manifest, predict: loaded.predict, openPage, runtime: runtime.name });
  } catch (err) {
    throw new WidgetError(err, "failed");
  }
  document.body.dataset.ready = "true";
  window.dispatchEvent(new Event("tinkerflow-ready"));
  if (loaded.model.compareAccelerators) compare(loaded);
}

// A runtime module's menus: `options` (a list), or the single `option` of older modules.
function menuOptions(module) {
  return module.options || (module.option ? [module.option] : []);
}

// Where the runtime can time its accelerators against each other on this device (LiteRT.js
// with a WebGPU adapter and no verdict yet): once, on inputs of the model's own shapes, after
// the widget is up; the verdict is the default of the next visit.
async function compare(loaded) {
  try {
    const verdict = await loaded.model.compareAccelerators();
    if (!verdict) return;
    const ms = (name) => (verdict[`${name}_ms`] === undefined ? "could not run" : `${verdict[`${name}_ms`].toFixed(1)} ms`);
    const differs = verdict.check && !verdict.check.agrees ? " (its results differ from wasm's here)" : "";
    showNote(`Measured on this device (${verdict.adapter}): WebGPU ${ms("webgpu")}${differs}, wasm ${ms("wasm")} a ` +
      `prediction; this page runs on ${verdict.faster === "webgpu" ? "WebGPU" : "wasm"} from your next visit.`);
    document.body.dataset.acceleratorVerdict = JSON.stringify(verdict);
  } catch (err) {
    console.warn("tinkerflow: comparing accelerators failed", err);
  }
}

// A widget's own mistake is told as one: its file and line (from the error's stack), on the
// page and in the console, not as the model's failure.
const WIDGET_URL = new URL(config.widget, location.href).href;
const WIDGET_FOLDER = WIDGET_URL.slice(0, WIDGET_URL.lastIndexOf("/") + 1);

class WidgetError extends Error {
  constructor(cause, what) {
    const where = widgetLine(cause);
    const file = WIDGET_URL.slice(WIDGET_FOLDER.length);
    super(`${file} ${what}: ${cause && cause.name ? `${cause.name}: ` : ""}${cause && cause.message ? cause.message : cause}` +
      (where ? ` (${where})` : ""));
    this.cause = cause;
  }
}

function widgetLine(err) {
  for (const m of String((err && err.stack) || "").matchAll(/(https?:\/\/[^\s()]+?):(\d+):\d+/g)) {
    if (m[1].startsWith(WIDGET_FOLDER) && config.widget.startsWith("widget/")) return `${m[1].slice(WIDGET_FOLDER.length)}:${m[2]}`;
  }
  return null;
}

function failed(err) {
  const message = err instanceof WidgetError ? err.message
    : `This model could not run: ${err && err.message ? err.message : err}`;
  console.error(`tinkerflow: ${message}`, err instanceof WidgetError ? err.cause : err);
  showError(message);
  document.body.dataset.ready = "error";
}

// after the page is ready, a widget's event handler may still fail (a slider moved)
window.addEventListener("unhandledrejection", (event) => {
  if (widgetLine(event.reason)) failed(new WidgetError(event.reason, "failed"));
});
window.addEventListener("error", (event) => {
  if (widgetLine(event.error)) failed(new WidgetError(event.error, "failed"));
});

main().catch(failed);
