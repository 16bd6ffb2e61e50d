// The painter's own page: a caption in, four pictures out (one per seed), drawn by the
// text-to-image generator from the caption's terms counted over its vocabulary (text.js).
import { paintRGB, portableNormal } from "../../../assets/images.js";
import { textVector } from "../../../assets/text.js";

export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const { manifest } = ctx;
  const vocabulary = manifest.vocabulary;
  const size = manifest.outputs[0].shape[1];
  const output = manifest.outputs[0].name;
  const specials = new Set(["<pad>", "<start>", "<end>", "<unk>"]);
  $("painter-text").value = (manifest.examples && manifest.examples[0]) || vocabulary.filter((w) => !specials.has(w)).slice(0, 3).join(" ");

  async function paint() {
    const { vector, total } = textVector($("painter-text").value, manifest);
    $("painter-message").hidden = total > 0;
    $("painter-message").textContent = "None of these words is in the painter's vocabulary: it paints from noise alone.";
    const seed = Number($("painter-seed").value) || 0;
    const list = $("painter-images");
    list.replaceChildren();
    const started = performance.now();
    const latents = [];
    for (let k = 0; k < 4; k++) {
      const latent = Float32Array.from(portableNormal(seed * 1000 + k, manifest.latent_dim));
      latents.push(Array.from(latent));
      const result = await ctx.predict({ latent: { data: latent, shape: [1, latent.length] },
                                         condition: { data: vector, shape: [1, vector.length] } });
      const canvas = document.createElement("canvas");
      paintRGB(result[output].data, size, canvas);
      list.append(canvas);
    }
    const ms = performance.now() - started;
    $("painter-stats").textContent = `4 pictures in ${ms.toFixed(1)} ms`;
    root.dataset.latents = JSON.stringify(latents);
    root.dataset.painted = String(Number(root.dataset.painted || 0) + 1);
  }

  $("painter-paint").addEventListener("click", paint);
  await paint();
}
