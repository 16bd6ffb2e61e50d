// The captioner widget: captions a photo word by word with the exported caption step
// (greedy, as Python's greedy decoding), and, when the site also has a text_to_image page,
// plays AI telephone: paint the text, caption the painting, again, as `tinkerflow telephone`
// does with the same seed, and shows per round how much of the start text's scene each
// caption keeps (colour, shape, count, relation), as its report does. All text goes in as
// textContent.
import { paintRGB, portableNormal, prepareImage, rgbOf } from "../../../assets/images.js";
import { textVector } from "../../../assets/text.js";
import { keeps, truthOf } from "./scenes.js";

export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const { manifest } = ctx;
  const size = manifest.preprocessing.size;
  const vocab = manifest.vocabulary;
  const ids = manifest.special_ids;
  const length = manifest.decoding.caption_length - 1;
  const units = manifest.decoding.state_size;
  const banned = new Set([ids["<pad>"], ids["<start>"], ids["<unk>"]]);
  const canvas = $("captioner-canvas");
  const message = $("captioner-message");
  let image = null;

  async function caption(rgb) {
    let token = ids["<start>"];
    let state = new Float32Array(units);
    const words = [];
    for (let t = 0; t < length; t++) {
      const result = await ctx.predict({ image: { data: rgb, shape: [1, size, size, 3] },
                                         token: { data: [token], shape: [1, 1] },
                                         state: { data: state, shape: [1, units] } });
      const p = result.probabilities.data;
      let best = -1;
      for (let i = 0; i < p.length; i++) if (!banned.has(i) && (best < 0 || p[i] > p[best])) best = i;
      if (best === ids["<end>"]) break;
      words.push(vocab[best]);
      token = best;
      state = result.next_state.data;
    }
    return words.join(" ");
  }

  // As tinkerflow.plugins.captioning.decode.beam_search: the best `width` continuations of
  // the open captions each step, scores are summed log-probabilities, a finished caption
  // ranks by score / length ** 0.7.
  async function beamCaption(rgb, width = 3, penalty = 0.7) {
    let beams = [{ tokens: [], score: 0 }];
    let images = rgb;
    let state = new Float32Array(units);
    const finished = [];
    for (let t = 0; t < length; t++) {
      const n = beams.length;
      const result = await ctx.predict({
        image: { data: images, shape: [n, size, size, 3] },
        token: { data: beams.map((b) => (b.tokens.length ? b.tokens[b.tokens.length - 1] : ids["<start>"])), shape: [n, 1] },
        state: { data: state, shape: [n, units] },
      });
      const p = result.probabilities.data;
      const v = vocab.length;
      const candidates = [];
      beams.forEach((beam, i) => {
        const logp = Array.from(p.subarray(i * v, (i + 1) * v), (x, k) => (banned.has(k) ? -Infinity : Math.log(Math.max(x, 1e-12))));
        const order = logp.map((_, k) => k).sort((a, b) => logp[b] - logp[a]).slice(0, width);
        for (const k of order) candidates.push({ score: beam.score + logp[k], row: i, token: k });
      });
      candidates.sort((a, b) => b.score - a.score);
      const kept = [];
      const rows = [];
      for (const c of candidates) {
        if (c.token === ids["<end>"]) finished.push({ tokens: beams[c.row].tokens, score: c.score });
        else { kept.push({ tokens: [...beams[c.row].tokens, c.token], score: c.score }); rows.push(c.row); }
        if (kept.length === width) break;
      }
      beams = kept;
      if (!kept.length) break;
      const best = Math.max(...finished.map((f) => f.score / Math.max(1, f.tokens.length) ** penalty));
      if (finished.length >= width && best >= kept[0].score / length ** penalty) break;
      const next = new Float32Array(rows.length * units);
      const nextImages = new Float32Array(rows.length * size * size * 3);
      rows.forEach((row, j) => {
        next.set(result.next_state.data.subarray(row * units, (row + 1) * units), j * units);
        nextImages.set(images.subarray(row * size * size * 3, (row + 1) * size * size * 3), j * size * size * 3);
      });
      state = next;
      images = nextImages;
    }
    const ranked = (finished.length ? finished : beams).map((b) => ({ ...b, rank: b.score / Math.max(1, b.tokens.length) ** penalty }));
    ranked.sort((a, b) => b.rank - a.rank);
    return ranked.length ? ranked[0].tokens.map((k) => vocab[k]).join(" ") : "";
  }

  $("captioner-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    root.dataset.done = "false";
    message.hidden = true;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      message.textContent = "This file could not be read as an image.";
      message.hidden = false;
      return;
    }
    image = prepareImage(bitmap, bitmap.width, bitmap.height, size, canvas);
    bitmap.close();
    const started = performance.now();
    const text = $("captioner-decoding").value === "beam" ? await beamCaption(image) : await caption(image);
    root.dataset.captionMs = (performance.now() - started).toFixed(3);
    $("captioner-caption").textContent = text || "(nothing)";
    root.dataset.caption = text;
    root.dataset.done = "true";
  });

  const painter = await ctx.openPage("text_to_image");
  if (!painter) return;
  const painterManifest = painter.manifest;
  const painterSize = painterManifest.outputs[0].shape[1];
  const latentDim = painterManifest.latent_dim;
  const painted = painterManifest.outputs[0].name;
  $("telephone-painter").textContent = `${painter.page.experiment} ${painter.page.run}`;
  $("telephone").hidden = false;

  async function paint(text, seed) {
    const result = await painter.predict({
      latent: { data: Float32Array.from(portableNormal(seed, latentDim)), shape: [1, latentDim] },
      condition: { data: textVector(text, painterManifest).vector, shape: [1, painterManifest.vocabulary.length] } });
    return result[painted].data;
  }

  $("telephone-play").addEventListener("click", async () => {
    const list = $("telephone-rounds-list");
    list.replaceChildren();
    root.dataset.telephone = "playing";
    const seed = Number($("telephone-seed").value) || 0;
    const rounds = Math.max(1, Math.min(20, Number($("telephone-rounds").value) || 1));
    let text = $("telephone-text").value || root.dataset.caption || "";
    const truth = truthOf(text);
    const said = [];
    const kept = [];
    const started = performance.now();
    for (let r = 1; r <= rounds; r++) {
      const pixels = await paint(text, seed * 1000 + r);
      const item = document.createElement("li");
      const shown = document.createElement("canvas");
      paintRGB(pixels, painterSize, shown);
      const small = document.createElement("canvas");
      small.width = small.height = size;
      const draw = small.getContext("2d", { willReadFrequently: true });
      draw.imageSmoothingEnabled = true;
      draw.drawImage(shown, 0, 0, size, size);
      text = await caption(rgbOf(draw.getImageData(0, 0, size, size).data));
      const words = document.createElement("p");
      words.textContent = text || "(nothing)";
      item.append(shown, words);
      if (truth.shapes.length) {
        const k = keeps(text, truth);
        const line = document.createElement("small");
        line.className = "telephone-keeps";
        line.textContent = Object.entries(k)
          .map(([name, v]) => `${name} ${v === null ? "–" : v.toFixed(2)}`).join(" · ");
        item.append(line);
        kept.push(k);
      }
      list.append(item);
      said.push(text);
    }
    root.dataset.roundMs = ((performance.now() - started) / rounds).toFixed(3);
    root.dataset.telephoneCaptions = JSON.stringify(said);
    root.dataset.telephoneKeeps = JSON.stringify(kept);
    root.dataset.telephone = "done";
  });
}
