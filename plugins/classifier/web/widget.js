// The classifier widget: a photo from a file, a drop or the camera is prepared as in training
// (EXIF orientation, white behind transparency, centre square, smooth resize to the model's
// size), classified on this page, and shown with a probability per label. Labels go in as
// textContent; the photo never leaves the browser.
import { prepareImage } from "../../../assets/images.js";

export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const { manifest } = ctx;
  const size = manifest.preprocessing.size;
  const labels = manifest.labels;
  const inputName = manifest.inputs[0].name;
  const outputName = manifest.outputs[0].name;
  const canvas = $("classifier-canvas");
  canvas.width = canvas.height = size;
  const message = $("classifier-message");

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  async function classify(source, width, height) {
    const rgb = prepareImage(source, width, height, size, canvas);
    const result = await ctx.predict({ [inputName]: { data: rgb, shape: [1, size, size, 3] } });
    show(Array.from(result[outputName].data));
  }

  function show(probabilities) {
    let best = 0;
    probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
    $("classifier-label").textContent = labels[best];
    $("classifier-probability").textContent = `${(probabilities[best] * 100).toFixed(1)}%`;
    const bars = $("classifier-bars");
    bars.replaceChildren(...labels.map((label, i) => {
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = label;
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = probabilities[i];
      const value = document.createElement("span");
      value.textContent = `${(probabilities[i] * 100).toFixed(1)}%`;
      row.append(name, bar, value);
      return row;
    }));
    root.dataset.label = labels[best];
    root.dataset.probabilities = JSON.stringify(probabilities);
    root.dataset.done = "true";
  }

  async function classifyFile(file) {
    if (!file) return;
    root.dataset.done = "false";
    say("");
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      say("This file could not be read as an image; try a JPEG, PNG, GIF or WebP photo.");
      root.dataset.done = "error";
      return;
    }
    try {
      await classify(bitmap, bitmap.width, bitmap.height);
    } finally {
      bitmap.close();
    }
  }

  const input = $("classifier-file");
  input.addEventListener("change", () => classifyFile(input.files[0]));
  const drop = $("classifier-drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    classifyFile(event.dataTransfer.files[0]);
  });

  const video = $("classifier-video");
  const cameraButton = $("classifier-camera");
  const snap = $("classifier-snap");
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.isSecureContext) {
    cameraButton.hidden = false;
    cameraButton.addEventListener("click", async () => {
      try {
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
        await video.play();
        video.hidden = false;
        snap.hidden = false;
      } catch (err) {
        say(`The camera is not available here (${err && err.name ? err.name : "refused"}); choose a photo instead.`);
      }
    });
    snap.addEventListener("click", () => classify(video, video.videoWidth, video.videoHeight));
  }
}
