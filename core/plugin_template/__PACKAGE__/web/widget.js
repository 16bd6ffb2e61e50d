// The __NAME__ widget: two sliders place a point; the network says how likely it is to lie
// in the first or third quadrant. The contract (mount, ctx.predict) is tinkerflow's docs/widgets.md.
export async function mount(root, ctx) {
  const x = root.querySelector("#__NAME__-x");
  const y = root.querySelector("#__NAME__-y");
  let latest = 0;
  async function update() {
    const asked = ++latest;
    const point = [Number(x.value), Number(y.value)];
    const result = await ctx.predict({ point: { data: point, shape: [1, 2] } });
    if (asked !== latest) return;  // a newer point is on its way: show only the last answer
    root.querySelector("#__NAME__-x-value").textContent = point[0].toFixed(2);
    root.querySelector("#__NAME__-y-value").textContent = point[1].toFixed(2);
    root.querySelector("#__NAME__-probability").textContent = result.probability.data[0].toFixed(4);
  }
  x.addEventListener("input", update);
  y.addEventListener("input", update);
  await update();
}
