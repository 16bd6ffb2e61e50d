// TensorFlow.js in a page: runs a tfjs graph model variant (the folder `tinkerflow export
// --format tfjs` writes). tinkerflow.js imports this module from the site's assets/tfjs/,
// beside the tfjs scripts and wasm binaries TFJSExporter.page_assets copies there.
const here = new URL(".", import.meta.url).href;
export const backends = ["webgl", "wasm", "cpu"];
// the page's menus for this runtime ("" lets the manifest or tfjs choose)
export const options = [{ key: "backend", label: "backend", values: ["", ...backends] }];
let ready = null;

export function supported() {
  return true;
}

function script(src) {
  return new Promise((resolve, reject) => {
    const tag = document.createElement("script");
    tag.src = src;
    tag.onload = resolve;
    tag.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(tag);
  });
}

async function start(backend) {
  await script(`${here}tf.min.js`);
  await script(`${here}tf-backend-wasm.min.js`);
  window.tf.wasm.setWasmPaths(here);
  // on a cross-origin isolated page tfjs would pick its threaded wasm, whose worker comes
  // from a blob: URL the CSP refuses; the site ships the single-thread builds only
  window.tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  if (backend) await window.tf.setBackend(backend);
  await window.tf.ready();
  return window.tf;
}

// options.backend: the viewer's choice, else the manifest's (the backend the experiment found
// fastest), else tfjs' own order. Every model of a page shares the first model's backend.
export async function open(base, manifest, options = {}) {
  const wanted = [options.backend, manifest.backend].find((b) => backends.includes(b));
  if (!ready) ready = start(wanted);
  const tf = await ready;
  const model = await tf.loadGraphModel(`${base}model.json`);
  const outputs = manifest.outputs.map((o) => [o.name, o.node]);
  const intermediate = manifest.intermediate || {};
  return {
    backend: tf.getBackend(),
    tf,
    async run(feeds, extra = []) {
      const layers = extra.filter((name) => name in intermediate);
      const tensors = {};
      for (const input of manifest.inputs) {
        const given = feeds[input.name];
        tensors[input.node.split(":")[0]] = tf.tensor(given.data, given.shape, input.dtype === "int32" ? "int32" : "float32");
      }
      const nodes = [...outputs.map(([, node]) => node), ...layers.map((name) => intermediate[name])];
      let result = model.execute(tensors, nodes);
      result = Array.isArray(result) ? result : [result];
      const values = await Promise.all(result.map((t) => t.data()));
      const named = {};
      [...outputs.map(([name]) => name), ...layers].forEach((name, i) => {
        named[name] = { data: values[i], shape: result[i].shape };
      });
      tf.dispose([...result, ...Object.values(tensors)]);
      return named;
    },
    dispose() { model.dispose(); },
  };
}
