// The lyrics widget: writes word by word from a seed text, as tinkerflow's Python generator
// does (same tokens, same window, greedy at temperature 0). The model is the exported stepper
// (manifest.stepping): one call per word, carrying a state. All text goes in as textContent.
export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const vocab = ctx.manifest.vocabulary;
  const pre = ctx.manifest.preprocessing;
  const gen = ctx.manifest.generation || {};
  const [span, width] = ctx.manifest.stepping.state_shape;
  const index = new Map(vocab.map((token, i) => [token, i]));
  const banned = new Set(gen.never || [pre.pad_id, pre.unknown_id]);
  const prompt = $("lyrics-prompt");
  const temperature = $("lyrics-temperature");
  const words = $("lyrics-words");
  const output = $("lyrics-output");
  const message = $("lyrics-message");
  prompt.value = gen.prompt || "";
  temperature.value = String(gen.temperature ?? 0.8);
  words.value = String(gen.words || 60);
  $("lyrics-temperature-value").textContent = temperature.value;
  temperature.addEventListener("input", () => { $("lyrics-temperature-value").textContent = temperature.value; });

  function tokenize(text) {
    const tokens = [];
    for (const line of text.replace(/\r\n/g, "\n").split("\n")) {
      tokens.push(...line.split(/\s+/).filter(Boolean), pre.newline_token);
    }
    return tokens.filter((t) => t !== pre.newline_token);
  }

  function choose(probs, temp) {
    let best = -1;
    for (let i = 0; i < probs.length; i++) {
      if (!banned.has(i) && (best < 0 || probs[i] > probs[best])) best = i;
    }
    if (temp <= 0) return best;
    const logits = new Float64Array(probs.length);
    let max = -Infinity;
    for (let i = 0; i < probs.length; i++) {
      logits[i] = banned.has(i) ? -Infinity : Math.log(Math.max(probs[i], 1e-12)) / temp;
      if (logits[i] > max) max = logits[i];
    }
    let total = 0;
    for (let i = 0; i < logits.length; i++) { logits[i] = Math.exp(logits[i] - max); total += logits[i]; }
    let r = Math.random() * total;
    for (let i = 0; i < logits.length; i++) { r -= logits[i]; if (r <= 0) return i; }
    return best;
  }

  function show(tokens) {
    output.textContent = tokens.map((t) => (t === pre.newline_token ? "\n" : t))
      .join(" ").replace(/ ?\n ?/g, "\n");
  }

  let running = false;
  async function write() {
    if (running) return;
    const known = tokenize(prompt.value);
    const ids = known.map((t) => (index.has(t) ? index.get(t) : pre.unknown_id));
    message.hidden = true;
    if (known.length && ids.every((id) => id === pre.unknown_id)) {
      message.textContent = "None of these words is in the model's vocabulary; try other words.";
      message.hidden = false;
      return;
    }
    running = true;
    root.dataset.done = "false";
    const count = Math.max(1, Math.min(500, Number(words.value) || 1));
    const temp = Number(temperature.value);
    const context = [...new Array(span).fill(pre.pad_id), ...ids].slice(-span);
    const written = [];
    const started = performance.now();
    let state = new Float32Array(span * width);
    let probs;
    async function read(token) {
      const result = await ctx.predict({ token: { data: [token], shape: [1, 1] },
                                         state: { data: state, shape: [1, span, width] } });
      probs = result.next_word.data;
      state = result.next_state.data;
    }
    try {
      for (const token of context) await read(token);
      for (let n = 0; n < count; n++) {
        const next = choose(probs, temp);
        written.push(vocab[next]);
        show([...known, pre.newline_token, ...written]);
        if (n + 1 < count) await read(next);
      }
    } finally {
      running = false;
    }
    const ms = performance.now() - started;
    $("lyrics-stats").textContent = `${count} words in ${ms.toFixed(0)} ms (${(ms / count).toFixed(1)} ms a word)`;
    root.dataset.words = JSON.stringify(written);
    root.dataset.msPerWord = (ms / count).toFixed(3);
    root.dataset.done = "true";
  }

  $("lyrics-write").addEventListener("click", write);
}
