// The page runtime: picks a variant and a backend, loads the tfjs graph model and its deploy
// manifest, and hands the experiment's widget a context to predict with.
//
// A widget is an ES module exporting `mount(root, ctx)`; ctx has
//   manifest             the deploy manifest of the loaded variant
//   predict(inputs, {extra})  inputs: {name: {data: number[], shape: number[]}};
//                        resolves to {name: {data: Float32Array, shape}} for every output,
//                        plus the intermediate layers named in `extra` (see manifest.intermediate)
//   tf                   the TensorFlow.js namespace
const config = JSON.parse(document.getElementById("tinkerflow-config").textContent);
const params = new URLSearchParams(location.search);
const stats = { started: performance.now(), firstPredictionMs: null, lastPredictionMs: null, predictions: 0 };
window.tinkerflow = { stats, config };

function showError(message) {
  const box = document.getElementById("error");
  box.hidden = false;
  box.textContent = message;
}

function fillSelect(select, names, chosen) {
  for (const name of names) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    option.selected = name === chosen;
    select.append(option);
  }
}

function reloadWith(key, value) {
  const next = new URLSearchParams(location.search);
  if (value) next.set(key, value); else next.delete(key);
  location.search = next.toString();
}

async function main() {
  const names = config.variants.map((v) => `${v.name} (${v.bytes.toLocaleString()} B)`);
  const wanted = params.get("variant");
  const variant = config.variants.some((v) => v.name === wanted) ? wanted : config.default_variant;
  const variantSelect = document.getElementById("variant");
  config.variants.forEach((v, i) => fillSelect(variantSelect, [v.name], variant));
  [...variantSelect.options].forEach((o, i) => { o.textContent = names[i]; });
  variantSelect.addEventListener("change", () => reloadWith("variant", variantSelect.value));

  if (tf.wasm) tf.wasm.setWasmPaths(new URL("../../assets/wasm/", location.href).href);
  const base = `tfjs/${variant}/`;
  const manifest = await (await fetch(`${base}manifest.json`)).json();
  const backendSelect = document.getElementById("backend");
  const backend = params.get("backend");
  const known = (name) => [...backendSelect.options].some((o) => o.value === name);
  if (backend && known(backend)) {
    backendSelect.value = backend;
    await tf.setBackend(backend);
  } else if (manifest.backend && known(manifest.backend)) {
    await tf.setBackend(manifest.backend);  // "auto": the backend the experiment found fastest
  }
  backendSelect.addEventListener("change", () => reloadWith("backend", backendSelect.value));
  await tf.ready();
  document.getElementById("backend-used").textContent = tf.getBackend();
  document.body.dataset.backend = tf.getBackend();
  document.body.dataset.variant = variant;

  const model = await tf.loadGraphModel(`${base}model.json`);
  const outputs = manifest.outputs.map((o) => [o.name, o.node]);
  const intermediate = manifest.intermediate || {};

  async function predict(inputs, options = {}) {
    const extra = (options.extra || []).filter((name) => name in intermediate);
    const feeds = {};
    for (const input of manifest.inputs) {
      const given = inputs[input.name];
      if (!given) throw new Error(`missing input ${input.name}`);
      feeds[input.node.split(":")[0]] = tf.tensor(given.data, given.shape, input.dtype === "int32" ? "int32" : "float32");
    }
    const nodes = [...outputs.map(([, node]) => node), ...extra.map((name) => intermediate[name])];
    const start = performance.now();
    let result = model.execute(feeds, nodes);
    result = Array.isArray(result) ? result : [result];
    const values = await Promise.all(result.map((t) => t.data()));
    const elapsed = performance.now() - start;
    const named = {};
    [...outputs.map(([name]) => name), ...extra].forEach((name, i) => {
      named[name] = { data: values[i], shape: result[i].shape };
    });
    tf.dispose([...result, ...Object.values(feeds)]);
    stats.lastPredictionMs = elapsed;
    stats.predictions += 1;
    if (stats.firstPredictionMs === null) {
      stats.firstPredictionMs = performance.now() - stats.started;
      document.body.dataset.firstPredictionMs = stats.firstPredictionMs.toFixed(2);
    }
    document.body.dataset.lastPredictionMs = elapsed.toFixed(3);
    document.body.dataset.predictions = String(stats.predictions);
    document.getElementById("timing").textContent = `${elapsed.toFixed(2)} ms`;
    return named;
  }

  const widget = await import(new URL(config.widget, location.href).href);
  await widget.mount(document.getElementById("widget"), { manifest, predict, tf });
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  showError(`This model could not run: ${err && err.message ? err.message : err}`);
  document.body.dataset.ready = "error";
});
