// MediaPipe Tasks in a page: an image classifier's .tflite in MediaPipe's ImageClassifier, the
// C++ core Android, iOS and web apps use. TFLiteExporter.page_assets copies this module, the
// pinned @mediapipe/tasks-vision bundle and its wasm builds into the site's assets/mediapipe/.
//
// The widget's image tensor becomes an ImageData at the model's own size, so MediaPipe neither
// resizes nor converts it and its scores are LiteRT's on the same pixels. The package posts
// usage telemetry to a remote host; the site's Content-Security-Policy (connect-src 'self')
// blocks it, and nothing else leaves the page.
import { FilesetResolver, ImageClassifier } from "./vision_bundle.mjs";

export const options = [{ key: "delegate", label: "delegate", values: ["CPU"] }];
let fileset = null;

export function supported() {
  return typeof WebAssembly === "object" && typeof ImageData === "function";
}

export async function open(base, manifest, options = {}) {
  const labels = manifest.labels || [];
  if (!labels.length) throw new Error("MediaPipe's ImageClassifier needs the model's labels; this model has none");
  if (!fileset) fileset = await FilesetResolver.forVisionTasks(new URL("./wasm", import.meta.url).href);
  // the package hands this object to its wasm module: route the module's INFO and WARNING
  // stderr lines, which Emscripten sends to console.error
  globalThis.Module = {
    printErr(line) {
      if (/^INFO:/.test(line)) console.debug(line);
      else if (/^WARNING:/.test(line)) console.warn(line);
      else console.error(line);
    },
  };
  const classifier = await ImageClassifier.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: `${base}${manifest.file}`, delegate: options.delegate || "CPU" },
    runningMode: "IMAGE", maxResults: labels.length,
  });
  const image = manifest.inputs[0];
  const [, height, width] = image.shape;
  const scores = manifest.outputs[0].name;

  function classify(pixels, offset) {
    const rgba = new Uint8ClampedArray(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba[4 * i] = pixels[offset + 3 * i];
      rgba[4 * i + 1] = pixels[offset + 3 * i + 1];
      rgba[4 * i + 2] = pixels[offset + 3 * i + 2];
      rgba[4 * i + 3] = 255;
    }
    const result = classifier.classify(new ImageData(rgba, width, height));
    const row = new Float32Array(labels.length);
    for (const category of result.classifications[0].categories) {
      const index = labels.indexOf(category.categoryName);
      if (index < 0) throw new Error(`MediaPipe read the label ${category.categoryName}, which the model does not have`);
      row[index] = category.score;
    }
    return row;
  }

  return {
    backend: "wasm (MediaPipe ImageClassifier)",
    async run(feeds) {
      const given = feeds[image.name];
      const count = given.shape[0];
      const per = width * height * 3;
      const data = new Float32Array(count * labels.length);
      for (let k = 0; k < count; k++) data.set(classify(given.data, k * per), k * labels.length);
      return { [scores]: { data, shape: [count, labels.length] } };
    },
    dispose() { classifier.close(); },
  };
}
