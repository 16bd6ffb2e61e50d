// The generator widget: 16 images from random latent vectors (and, for a conditional model,
// the chosen conditions), and a walk between two of them. Pixels come straight from the
// exported generator (RGB 0..255); labels and values go in as textContent.
export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const { manifest } = ctx;
  const [, size] = manifest.outputs[0].shape;
  const outputName = manifest.outputs[0].name;
  const latentDim = manifest.latent_dim;
  const { columns, groups } = manifest.conditions || { columns: [], groups: {} };
  const gap = 2;
  const count = (manifest.generation && manifest.generation.grid) || 16;
  const per = 4;
  const steps = (manifest.generation && manifest.generation.interpolation_steps) || 8;

  const selects = {};
  for (const [attribute, values] of Object.entries(groups)) {
    const label = document.createElement("label");
    label.append(document.createTextNode(`${attribute} `));
    const select = document.createElement("select");
    for (const value of ["(each in turn)", ...values]) {
      const option = document.createElement("option");
      option.value = value === "(each in turn)" ? "" : value;
      option.textContent = value;
      select.append(option);
    }
    label.append(select);
    $("dcgan-conditions").append(label);
    selects[attribute] = select;
  }

  function gaussian() {
    const u = 1 - Math.random();
    const v = Math.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  function conditionRow(i) {
    const row = new Array(columns.length).fill(0);
    for (const [attribute, values] of Object.entries(groups)) {
      const value = selects[attribute].value || values[i % values.length];
      row[columns.indexOf(`${attribute}=${value}`)] = 1;
    }
    return row;
  }

  async function generate(latents, conditions) {
    const inputs = { latent: { data: latents.flat(), shape: [latents.length, latentDim] } };
    if (columns.length) inputs.condition = { data: conditions.flat(), shape: [conditions.length, columns.length] };
    const result = await ctx.predict(inputs);
    return result[outputName].data;
  }

  function paint(canvas, pixels, n, across) {
    const rows = Math.ceil(n / across);
    canvas.width = across * (size + gap) + gap;
    canvas.height = rows * (size + gap) + gap;
    const draw = canvas.getContext("2d");
    draw.fillStyle = "#808080";
    draw.fillRect(0, 0, canvas.width, canvas.height);
    for (let k = 0; k < n; k++) {
      const image = draw.createImageData(size, size);
      for (let p = 0, q = k * size * size * 3; p < size * size; p++, q += 3) {
        image.data[4 * p] = pixels[q];
        image.data[4 * p + 1] = pixels[q + 1];
        image.data[4 * p + 2] = pixels[q + 2];
        image.data[4 * p + 3] = 255;
      }
      draw.putImageData(image, gap + (k % across) * (size + gap), gap + Math.floor(k / across) * (size + gap));
    }
  }

  function slerp(a, b, t) {
    const dot = a.reduce((s, x, i) => s + x * b[i], 0);
    const norms = Math.hypot(...a) * Math.hypot(...b);
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / norms)));
    if (omega < 1e-6) return a.map((x, i) => x + t * (b[i] - x));
    const s = Math.sin(omega);
    return a.map((x, i) => (Math.sin((1 - t) * omega) / s) * x + (Math.sin(t * omega) / s) * b[i]);
  }

  let latents = [];
  let conditions = [];
  let picked = [];

  async function fresh() {
    latents = Array.from({ length: count }, () => Array.from({ length: latentDim }, gaussian));
    conditions = latents.map((_, i) => conditionRow(i));
    const started = performance.now();
    const pixels = await generate(latents, conditions);
    const ms = performance.now() - started;
    paint($("dcgan-grid"), pixels, count, per);
    $("dcgan-stats").textContent = `${count} images in ${ms.toFixed(1)} ms`;
    picked = [];
    $("dcgan-walk").hidden = true;
    root.dataset.latents = JSON.stringify(latents);
    root.dataset.conditions = JSON.stringify(conditions);
    root.dataset.ms = ms.toFixed(3);
    root.dataset.generated = String(Number(root.dataset.generated || 0) + 1);
  }

  async function walk() {
    const [a, b] = picked;
    const t = Number($("dcgan-walk-t").value);
    const path = Array.from({ length: steps + 1 }, (_, s) => slerp(latents[a], latents[b], s / steps));
    const mix = (u) => conditions[a].map((x, i) => x + u * (conditions[b][i] - x));
    const strip = await generate(path, path.map((_, s) => mix(s / steps)));
    paint($("dcgan-walk-strip"), strip, steps + 1, steps + 1);
    const one = await generate([slerp(latents[a], latents[b], t)], [mix(t)]);
    paint($("dcgan-walk-image"), one, 1, 1);
    root.dataset.walk = JSON.stringify({ from: a, to: b, t });
  }

  $("dcgan-grid").addEventListener("click", async (event) => {
    const box = event.currentTarget.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * event.currentTarget.width;
    const y = ((event.clientY - box.top) / box.height) * event.currentTarget.height;
    const k = Math.floor(y / (size + gap)) * per + Math.floor(x / (size + gap));
    if (k < 0 || k >= count) return;
    picked = picked.length === 2 ? [k] : [...picked, k];
    if (picked.length < 2) return;
    $("dcgan-walk-from").textContent = `#${picked[0] + 1}`;
    $("dcgan-walk-to").textContent = `#${picked[1] + 1}`;
    $("dcgan-walk").hidden = false;
    await walk();
  });
  $("dcgan-walk-t").addEventListener("input", walk);
  $("dcgan-generate").addEventListener("click", fresh);
  await fresh();
}
