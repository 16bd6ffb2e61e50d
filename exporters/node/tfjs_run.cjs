// Runs a TensorFlow.js graph model bundle in Node with the pinned @tensorflow/tfjs, on its wasm
// backend (XNNPACK, several times faster than the pure-JS cpu backend) or the one named by
// TINKERFLOW_TFJS_BACKEND; a model with an op the wasm backend lacks runs on cpu instead.
// Tensor data travels as little-endian bytes in base64 (float32, int32, or bool as one byte each).
//
//   node tfjs_run.cjs <node_modules> <bundle_dir> <request.json>   one request from a file
//   node tfjs_run.cjs <node_modules> <bundle_dir> --serve          one request per stdin line,
//                                                                   one reply per stdout line
//
// request: {"inputs": {name: {"shape": [...], "dtype": "float32", "base64": "..."}},
//           "outputs": {name: node_name}, "repeat": 0}
// prints:  {"outputs": {name: {"shape": [...], "dtype": "float32", "base64": "..."}}, "backend": "cpu",
//           "timings_ms": [...] (when repeat > 0: one forward pass of the whole batch each)}
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const [modulesDir, bundleDir, requestPath] = process.argv.slice(2);
  const tf = require(path.join(modulesDir, "@tensorflow", "tfjs"));
  const wanted = process.env.TINKERFLOW_TFJS_BACKEND || "wasm";
  if (wanted === "wasm") require(path.join(modulesDir, "@tensorflow", "tfjs-backend-wasm"));
  await tf.setBackend(wanted);
  await tf.ready();

  const modelJson = JSON.parse(fs.readFileSync(path.join(bundleDir, "model.json"), "utf8"));
  const weightSpecs = [];
  const buffers = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(bundleDir, shard)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    signature: modelJson.signature,
    userDefinedMetadata: modelJson.userDefinedMetadata,
    modelInitializer: modelJson.modelInitializer,
    weightSpecs,
    weightData,
  }));

  if (requestPath === "--serve") {
    const readline = require("readline");
    const lines = readline.createInterface({ input: process.stdin, terminal: false });
    process.stdout.write(JSON.stringify({ ready: true, backend: tf.getBackend(), tfjs: tf.version.tfjs }) + "\n");
    for await (const line of lines) {
      if (!line.trim()) continue;
      let reply;
      try {
        reply = await answer(tf, model, JSON.parse(line));
      } catch (err) {
        reply = { error: err && err.message ? err.message : String(err) };
      }
      process.stdout.write(JSON.stringify(reply) + "\n");
    }
    return;
  }
  const reply = await answer(tf, model, JSON.parse(fs.readFileSync(requestPath, "utf8")));
  process.stdout.write(JSON.stringify(reply));
}

function fromBase64(text, dtype) {
  const bytes = new Uint8Array(Buffer.from(text, "base64"));  // a copy: aligned for the typed views
  if (dtype === "int32") return new Int32Array(bytes.buffer);
  if (dtype === "bool") return bytes;
  return new Float32Array(bytes.buffer);
}

async function answer(tf, model, request) {
  const feeds = {};
  for (const [name, spec] of Object.entries(request.inputs)) {
    feeds[name] = tf.tensor(fromBase64(spec.base64, spec.dtype), spec.shape, spec.dtype);
  }
  const names = Object.keys(request.outputs);
  const nodes = names.map((n) => request.outputs[n]);
  const run = () => {
    const result = model.execute(feeds, nodes);
    return Array.isArray(result) ? result : [result];
  };
  let tensors;
  try {
    tensors = run();
  } catch (err) {
    if (tf.getBackend() !== "wasm" || !/not registered|not implemented/i.test(String(err && err.message))) throw err;
    await tf.setBackend("cpu");  // an op the wasm backend lacks: this model runs on cpu from here on
    tensors = run();
  }
  const outputs = {};
  for (let i = 0; i < names.length; i++) {
    const data = await tensors[i].data();
    outputs[names[i]] = { shape: tensors[i].shape, dtype: tensors[i].dtype === "bool" ? "uint8" : tensors[i].dtype,
                          base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
  }
  tf.dispose(tensors);
  const timings = [];
  for (let i = 0; i < (request.repeat || 0); i++) {
    const start = process.hrtime.bigint();
    const out = run();
    await Promise.all(out.map((t) => t.data()));
    timings.push(Number(process.hrtime.bigint() - start) / 1e6);
    tf.dispose(out);
  }
  tf.dispose(Object.values(feeds));
  return { outputs, backend: tf.getBackend(), tfjs: tf.version.tfjs, timings_ms: timings };
}

main().catch((err) => {
  process.stderr.write(`tfjs: ${err && err.message ? err.message : err}\n`);
  process.exit(3);
});
