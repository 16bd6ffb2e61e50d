// LiteRT.js in a page: runs a .tflite variant (the folder `tinkerflow export --format tflite`
// writes) on LiteRT's WebAssembly CPU build or, where the browser has a WebGPU adapter, on
// its WebGPU accelerator. TFLiteExporter.page_assets bundles this module with @litertjs/core
// into the site's assets/litertjs/ and copies the wasm builds beside it.
//
// The accelerator: `webgpu` or `wasm` as the viewer chose; by default (`auto`) wasm, unless
// this browser measured WebGPU faster on this model before (kept in localStorage per model
// file and adapter). That measurement is made once, after the page is ready, by
// `compareAccelerators`. Where WebGPU is missing, cannot compile or run the model, or gives
// other results than wasm (checked on every compile), the page runs on wasm, with a note.
//
// LiteRT.js takes fixed shapes only: a call with another batch than the file's is split into
// calls of the file's batch (the last one padded), as the Python runtime does. A uint8 file's
// inputs are quantized from the real numbers widgets give, and its outputs turned back into
// real numbers, with the scale and zero point the manifest copies from the file.
import { Tensor, loadAndCompile, loadLiteRt } from "@litertjs/core";

const wasm = new URL("./wasm/", import.meta.url).href;
export const options = [
  { key: "accelerator", label: "accelerator", values: ["", "wasm", "webgpu"] },
  { key: "threads", label: "threads", values: ["1", "2", "4"] },
];
const VERDICTS = "tinkerflow-accelerator";  // localStorage: {"<model url> <adapter>": {faster, wasm_ms, webgpu_ms}}
const ARRAYS = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array };
const RANGES = { uint8: [0, 255], int32: [-2147483648, 2147483647] };

function quantize(values, { scale, zero_point: zero }, dtype) {
  const [low, high] = RANGES[dtype];
  const out = new ARRAYS[dtype](values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(high, Math.max(low, Math.round(values[i] / scale + zero)));
  return out;
}

function dequantize(values, { scale, zero_point: zero }) {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - zero) * scale;
  return out;
}
let ready = null;
let threads = 1;
let gpuShare = null;  // "19 of 30 operations" when the WebGPU delegate ran only part of the last model compiled

// Threads need cross-origin isolation (COOP same-origin + COEP require-corp); without it the
// page runs one thread rather than failing.
// A page on WebGPU loads the JSPI build where the browser has JSPI: in the others, a model
// the delegate takes only in part fails ("Asyncify is not defined") and falls back to wasm.
function start(wanted, jspi) {
  threads = wanted > 1 && globalThis.crossOriginIsolated && !jspi ? wanted : 1;
  // the wasm module writes its INFO and WARNING log lines to stderr, which Emscripten sends
  // to console.error; the loader hands this object to the module factory
  // the WebGPU delegate reports, as ERROR lines, the operations it leaves to the CPU: a
  // warning, and the split of the model is kept for the page's note
  let split = false;
  globalThis.Module = {
    printErr(line) {
      if (/not supported by GPU delegate/.test(line)) split = true;
      const shares = /(\d+) operations will run on the GPU, and the remaining (\d+)/.exec(line);
      if (shares) gpuShare = `${shares[1]} of ${Number(shares[1]) + Number(shares[2])} operations`;
      if (split) {
        console.warn(line);
        if (shares) split = false;
      } else if (/^INFO:/.test(line)) console.debug(line);
      else if (/^WARNING:/.test(line)) console.warn(line);
      else console.error(line);
    },
  };
  return loadLiteRt(wasm, jspi ? { jspi: true } : threads > 1 ? { threads: true } : {});
}

export function supported() {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  } catch {
    return false;
  }
}

// The WebGPU adapter's name ("google swiftshader"), or null where the browser has none.
let adapterName = null;
async function adapter() {
  if (adapterName === null && globalThis.navigator && navigator.gpu) {
    try {
      const found = await navigator.gpu.requestAdapter();
      adapterName = found ? [found.info.vendor, found.info.architecture].filter(Boolean).join(" ") || "unnamed" : "";
    } catch {
      adapterName = "";
    }
  }
  return adapterName || null;
}

function verdicts() {
  try {
    const kept = JSON.parse(localStorage.getItem(VERDICTS) || "{}");
    return kept && typeof kept === "object" ? kept : {};
  } catch {
    return {};
  }
}

async function compile(url, accelerator) {
  gpuShare = null;
  return loadAndCompile(url, accelerator === "webgpu" ? { accelerator, gpuOptions: { precision: "fp32" } }
    : { accelerator, cpuOptions: { numThreads: threads } });
}

function message(err) {
  return String(err && err.message ? err.message : err).split("\n")[0];
}

// The accelerator to compile for, and a note when it is not the one asked for.
async function choose(url, wanted) {
  const gpu = await adapter();
  if (wanted === "webgpu") {
    return gpu ? ["webgpu", ""] : ["wasm", "This browser has no WebGPU adapter; running on wasm."];
  }
  if (wanted === "wasm" || !gpu) return ["wasm", ""];
  const kept = verdicts()[`${url} ${gpu}`];
  return [kept && kept.faster === "webgpu" ? "webgpu" : "wasm", ""];
}

// Inputs of the model's own shapes for comparing accelerators: a fixed spread of values in
// [0, 1) for real-valued inputs, zeros for integer ones (token ids: always in range).
function probeFeeds(manifest) {
  const feeds = {};
  for (const input of manifest.inputs) {
    const size = input.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (input.dtype !== "int32") for (let i = 0; i < size; i++) data[i] = (i * 0.6180339887) % 1;
    feeds[input.name] = { data, shape: input.shape };
  }
  return feeds;
}

// WebGPU's outputs against wasm's on the same inputs, held to the tolerance the model's deploy
// bundle gives apps (exporters/deploy.py): one step of a quantized output; else 1e-4 of the
// outputs' scale for float files, 1% for files with quantized weights or activations.
async function agreement(gpu, cpu, manifest) {
  const feeds = probeFeeds(manifest);
  const [got, want] = [await gpu.run(feeds), await cpu.run(feeds)];
  let worst = 0;
  let scale = 0;
  for (const [name, reference] of Object.entries(want)) {
    for (let i = 0; i < reference.data.length; i++) {
      worst = Math.max(worst, Math.abs(got[name].data[i] - reference.data[i]));
      scale = Math.max(scale, Math.abs(reference.data[i]));
    }
  }
  const quantized = manifest.outputs.every((o) => o.quantization);
  const tolerance = quantized ? Math.max(...manifest.outputs.map((o) => o.quantization.scale))
    : Math.max(scale, 1) * (manifest.quantized ? 1e-2 : 1e-4);
  return { worst, tolerance, agrees: worst <= tolerance };
}

export async function open(base, manifest, options = {}) {
  const url = `${base}${manifest.file}`;
  const asked = options.accelerator || "";
  const [accelerator, note] = await choose(url, asked);
  const jspi = accelerator === "webgpu" && typeof WebAssembly.Suspending === "function";
  if (!ready) ready = start(Number(options.threads) || 1, jspi);
  await ready;
  const cpu = () => compile(url, "wasm").then((model) => wrap(model, manifest, "wasm", note, url, asked));
  if (accelerator === "wasm") return cpu();
  let gpu;
  try {
    gpu = wrap(await compile(url, "webgpu"), manifest, "webgpu", note, url, asked);
    if (gpuShare) gpu.note = `WebGPU runs ${gpuShare} of this model; the rest run on the CPU.`;
  } catch (err) {
    return Object.assign(await cpu(), { note: `WebGPU could not run this model (${message(err)}); running on wasm.` });
  }
  const fallback = await cpu();
  const check = await agreement(gpu, fallback, manifest).catch((err) => ({ agrees: false, error: message(err) }));
  if (!check.agrees) {
    gpu.dispose();
    const why = check.error ? `failed on this model (${check.error})` : `results on this device differ from wasm's by ` +
      `${check.worst.toPrecision(3)} (more than the ${check.tolerance.toPrecision(3)} this model allows)`;
    return Object.assign(fallback, { check, note: `WebGPU ${why}; running on wasm.` });
  }
  fallback.dispose();
  return Object.assign(gpu, { check });
}

function wrap(model, manifest, accelerator, note, url, asked) {
  const batch = manifest.inputs[0].shape[0];
  const intermediate = (manifest.signatures || []).includes("with_intermediate");
  const outputs = Object.fromEntries(manifest.outputs.map((o) => [o.name, o]));

  async function call(feeds, extra) {
    const tensors = {};
    for (const input of manifest.inputs) {
      const ArrayType = ARRAYS[input.dtype] || Float32Array;
      const given = feeds[input.name];
      const data = input.quantization ? quantize(given.data, input.quantization, input.dtype)
        : given.data instanceof ArrayType ? given.data : ArrayType.from(given.data);
      tensors[input.name] = new Tensor(data, input.shape);
    }
    try {
      const result = extra.length && intermediate ? await model.run("with_intermediate", tensors) : await model.run(tensors);
      const named = {};
      for (let [name, tensor] of Object.entries(result)) {
        if (tensor.accelerator !== "wasm") tensor = await tensor.moveTo("wasm");
        const spec = outputs[name];
        const data = spec && spec.quantization ? dequantize(tensor.toTypedArray(), spec.quantization) : tensor.toTypedArray().slice();
        named[name] = { data, shape: Array.from(tensor.type.layout.dimensions) };
        tensor.delete();
      }
      return named;
    } finally {
      for (const tensor of Object.values(tensors)) tensor.delete();
    }
  }

  async function run(feeds, extra = []) {
    const given = feeds[manifest.inputs[0].name].shape[0];
    if (given === batch) return call(feeds, extra);
    const parts = [];
    for (let start = 0; start < given; start += batch) {
      const chunk = {};
      for (const input of manifest.inputs) {
        const per = input.shape.slice(1).reduce((a, b) => a * b, 1);
        const data = Array.from(feeds[input.name].data).slice(start * per, (start + batch) * per);
        while (data.length < batch * per) data.push(...data.slice(data.length - per, data.length));
        chunk[input.name] = { data, shape: input.shape };
      }
      parts.push(await call(chunk, extra));
    }
    const named = {};
    for (const name of Object.keys(parts[0])) {
      const per = parts[0][name].shape.slice(1).reduce((a, b) => a * b, 1);
      const data = new parts[0][name].data.constructor(given * per);
      parts.forEach((part, k) => data.set(part[name].data.subarray(0, Math.min(batch, given - k * batch) * per), k * batch * per));
      named[name] = { data, shape: [given, ...parts[0][name].shape.slice(1)] };
    }
    return named;
  }

  return {
    backend: accelerator === "webgpu" ? `webgpu, ${adapterName}` : `wasm, ${threads} thread${threads > 1 ? "s" : ""}`,
    accelerator,
    threads,
    note,
    run,
    // in `auto` mode, where the browser has an adapter and no verdict for this model yet: both
    // accelerators checked against each other and timed, the faster that agrees with wasm
    // kept as the default of the next visit; null where there is nothing to compare
    async compareAccelerators() {
      const feeds = probeFeeds(manifest);
      const gpu = await adapter();
      if (asked || !gpu || verdicts()[`${url} ${gpu}`]) return null;
      const result = { adapter: gpu };
      const otherName = accelerator === "webgpu" ? "wasm" : "webgpu";
      const other = await compile(url, otherName).then((m) => wrap(m, manifest, otherName, "", url, "x")).catch(() => null);
      const time = async (runner) => {
        await runner(feeds);
        const begin = performance.now();
        for (let i = 0; i < 3; i++) await runner(feeds);
        return (performance.now() - begin) / 3;
      };
      result[`${accelerator}_ms`] = await time(run);
      if (other) {
        const self = { run };
        result.check = await agreement(...(accelerator === "webgpu" ? [self, other] : [other, self]), manifest);
        result[`${otherName}_ms`] = await time(other.run);
        other.dispose();
      }
      result.faster = other && result.check.agrees && result.webgpu_ms < result.wasm_ms ? "webgpu" : "wasm";
      try {
        localStorage.setItem(VERDICTS, JSON.stringify({ ...verdicts(), [`${url} ${gpu}`]: result }));
      } catch { /* storage full or refused: measured again next visit */ }
      return result;
    },
    dispose() { model.delete(); },
  };
}
