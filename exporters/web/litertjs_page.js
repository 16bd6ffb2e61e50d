// LiteRT.js in a page: runs a .tflite variant (the folder `tinkerflow export --format tflite`
// writes) on LiteRT's WebAssembly CPU build. TFLiteExporter.page_assets bundles this module
// with @litertjs/core into the site's assets/litertjs/ and copies the wasm builds beside it.
//
// LiteRT.js takes fixed shapes only: a call with another batch than the file's is split into
// calls of the file's batch (the last one padded), as the Python runtime does. A uint8 file's
// inputs are quantized from the real numbers widgets give, and its outputs turned back into
// real numbers, with the scale and zero point the manifest copies from the file.
import { Tensor, loadAndCompile, loadLiteRt } from "@litertjs/core";

const wasm = new URL("./wasm/", import.meta.url).href;
export const option = { key: "threads", label: "threads", values: ["1", "2", "4"] };
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

// Threads need cross-origin isolation (COOP same-origin + COEP require-corp); without it the
// page runs one thread rather than failing.
function start(wanted) {
  threads = wanted > 1 && globalThis.crossOriginIsolated ? wanted : 1;
  // the wasm module writes its INFO and WARNING log lines to stderr, which Emscripten sends
  // to console.error; the loader hands this object to the module factory
  globalThis.Module = {
    printErr(line) {
      if (/^INFO:/.test(line)) console.debug(line);
      else if (/^WARNING:/.test(line)) console.warn(line);
      else console.error(line);
    },
  };
  return loadLiteRt(wasm, threads > 1 ? { threads: true } : {});
}

export function supported() {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  } catch {
    return false;
  }
}

export async function open(base, manifest, options = {}) {
  if (!ready) ready = start(Number(options.threads) || 1);
  await ready;
  const model = await loadAndCompile(`${base}${manifest.file}`, {
    accelerator: "wasm", cpuOptions: { numThreads: threads } });
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
      for (const [name, tensor] of Object.entries(result)) {
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

  return {
    backend: `wasm, ${threads} thread${threads > 1 ? "s" : ""}`,
    threads,
    async run(feeds, extra = []) {
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
    },
    dispose() { model.delete(); },
  };
}
