// The addition widget: two numbers in, the network's sum next to the true sum and the error,
// live as you type, and the hidden layer's activations for the input.
export async function mount(root, ctx) {
  const $ = (id) => root.querySelector(`#${id}`);
  const [low, high] = ctx.manifest.input_range || [0, Infinity];
  const a = $("addition-a");
  const b = $("addition-b");
  for (const box of [a, b]) { box.min = low; box.max = high; }
  $("addition-range").textContent = `The network was trained on numbers from ${low} to ${high}.`;
  const hidden = $("addition-hidden");

  function showHidden(values) {
    hidden.replaceChildren();
    values.forEach((value, unit) => {
      const row = document.createElement("div");
      row.className = "row";
      const label = document.createElement("span");
      label.textContent = `unit ${unit}`;
      const track = document.createElement("div");
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
      track.append(bar);
      const number = document.createElement("span");
      number.textContent = value.toFixed(3);
      row.append(label, track, number);
      hidden.append(row);
    });
  }

  async function update() {
    const x = Number(a.value);
    const y = Number(b.value);
    if (!Number.isFinite(x) || !Number.isFinite(y) || a.value === "" || b.value === "") return;
    const result = await ctx.predict({ ab: { data: [x, y], shape: [1, 2] } }, { extra: ["hidden"] });
    const answer = result.sum.data[0];
    const error = answer - (x + y);
    $("addition-answer").textContent = answer.toFixed(2);
    $("addition-true").textContent = String(x + y);
    $("addition-error").textContent = (error >= 0 ? "+" : "") + error.toFixed(2);
    const right = Math.round(answer) === x + y;
    const verdict = $("addition-verdict");
    verdict.textContent = `${Math.round(answer)} (${right ? "right" : "wrong"})`;
    verdict.className = right ? "right" : "wrong";
    if (result.hidden) showHidden(Array.from(result.hidden.data));
    root.dataset.answer = String(answer);
  }

  a.addEventListener("input", update);
  b.addEventListener("input", update);
  await update();
}
