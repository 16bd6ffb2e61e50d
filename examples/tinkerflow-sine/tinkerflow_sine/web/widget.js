// The sine example's widget: a slider for x, the network's sin(x) next to the true value.
export async function mount(root, ctx) {
  const slider = root.querySelector("#sine-x");
  async function update() {
    const x = Number(slider.value);
    const result = await ctx.predict({ x: { data: [x], shape: [1, 1] } });
    root.querySelector("#sine-x-value").textContent = x.toFixed(2);
    root.querySelector("#sine-y").textContent = result.y.data[0].toFixed(4);
    root.querySelector("#sine-true").textContent = Math.sin(x).toFixed(4);
  }
  slider.addEventListener("input", update);
  await update();
}
