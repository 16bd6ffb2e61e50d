// The widget for experiments that ship none: one number field per input value, the outputs
// printed below. Inputs start from the manifest's example inputs.
export async function mount(root, ctx) {
  const form = document.createElement("form");
  form.className = "generic";
  const fields = {};
  for (const input of ctx.manifest.inputs) {
    const example = (ctx.manifest.example_inputs || {})[input.name] || [];
    const shape = input.shape.map((d) => d ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    const first = (example[0] !== undefined ? [example[0]].flat(Infinity) : []);
    fields[input.name] = { shape, inputs: [] };
    if (size > 64) {
      const note = document.createElement("p");
      note.textContent = `${input.name}: ${size} values (shape ${shape.join("×")}); filled with the example input.`;
      form.append(note);
      fields[input.name].fixed = Array.from({ length: size }, (_, i) => first[i] ?? 0);
      continue;
    }
    for (let i = 0; i < size; i++) {
      const label = document.createElement("label");
      label.textContent = `${input.name}[${i}] `;
      const box = document.createElement("input");
      box.type = "number";
      box.step = "any";
      box.value = first[i] ?? 0;
      label.append(box);
      form.append(label);
      fields[input.name].inputs.push(box);
    }
  }
  const out = document.createElement("output");
  form.append(out);
  root.append(form);
  async function update() {
    const inputs = {};
    for (const [name, f] of Object.entries(fields)) {
      inputs[name] = { data: f.fixed || f.inputs.map((b) => Number(b.value)), shape: f.shape };
    }
    const result = await ctx.predict(inputs);
    out.textContent = Object.entries(result)
      .map(([name, r]) => `${name} = [${Array.from(r.data).slice(0, 16).map((v) => v.toFixed(4)).join(", ")}]`)
      .join("\n");
  }
  form.addEventListener("input", update);
  form.addEventListener("submit", (e) => e.preventDefault());
  await update();
}
