// What a caption says about a scene of shapes, and how much of a start scene a later caption
// keeps: the page's copy of parse, truth_of, judge_caption and telephone.survival
// (plugins/captioning/scenes.py, telephone.py), read the same way word for word.
const COLOURS = new Set(["red", "orange", "yellow", "green", "blue", "purple"]);
const SHAPES = { circle: "circle", ball: "circle", square: "square", box: "square", triangle: "triangle" };
const SIZES = { small: "small", little: "small", large: "large", big: "large" };
const RELATIONS = ["left of", "right of", "above", "below"];

const words = (text) => (text || "").toLowerCase().match(/[a-z0-9']+/g) || [];

export function parse(caption) {
  const tokens = words(caption);
  const shapes = [];
  let relation = null;
  let size = null;
  let colour = null;
  for (let k = 0; k < tokens.length; k++) {
    const word = tokens[k];
    const pair = tokens.slice(k, k + 2).join(" ");
    if (word in SIZES) size = SIZES[word];
    else if (COLOURS.has(word)) colour = word;
    else if (word in SHAPES) { shapes.push({ size, colour, shape: SHAPES[word] }); size = colour = null; }
    else if (pair === "left of" || pair === "right of" || word === "above" || word === "below") {
      if (shapes.length === 1 && relation === null) relation = RELATIONS.includes(pair) ? pair : word;
      if (RELATIONS.includes(pair)) k += 1;
    }
  }
  return { shapes, relation };
}

export function truthOf(caption) {
  const said = parse(caption);
  const cells = [[0, 1], [2, 1], [1, 0]];
  if (said.relation === "right of") { cells[0] = [2, 1]; cells[1] = [0, 1]; }
  else if (said.relation === "above") { cells[0] = [1, 0]; cells[1] = [1, 2]; }
  else if (said.relation === "below") { cells[0] = [1, 2]; cells[1] = [1, 0]; }
  return {
    shapes: said.shapes.slice(0, 3).map((s, i) => ({ colour: s.colour || "", shape: s.shape, size: s.size || "small",
                                                      column: cells[i % 3][0], row: cells[i % 3][1] })),
    relation: said.relation,
  };
}

function holds(relation, a, b) {
  return { "left of": a.column < b.column, "right of": a.column > b.column,
           above: a.row < b.row, below: a.row > b.row }[relation];
}

function overlap(said, truth) {
  if (!said.length && !truth.length) return 1;
  const left = [...truth];
  let matched = 0;
  for (const item of said) {
    const at = left.indexOf(item);
    if (at >= 0) { left.splice(at, 1); matched += 1; }
  }
  return matched / Math.max(said.length, truth.length);
}

// How much of `truth` (truthOf the start text) a caption keeps: colour, shape, count and,
// when the start stated one, the relation (a dropped relation counts as lost).
export function keeps(caption, truth) {
  const said = parse(caption);
  const out = {
    colour: overlap(said.shapes.map((s) => s.colour).filter(Boolean), truth.shapes.map((s) => s.colour)),
    shape: overlap(said.shapes.map((s) => s.shape), truth.shapes.map((s) => s.shape)),
    count: said.shapes.length === truth.shapes.length ? 1 : 0,
    relation: null,
  };
  if (truth.relation !== null) {
    out.relation = 0;
    if (said.relation !== null && said.shapes.length >= 2) {
      const matching = (s) => truth.shapes.map((t, i) => [t, i])
        .filter(([t]) => t.shape === s.shape && (s.colour === null || s.colour === t.colour));
      const firsts = matching(said.shapes[0]);
      const seconds = matching(said.shapes[1]);
      out.relation = firsts.some(([a, i]) => seconds.some(([b, j]) => i !== j && holds(said.relation, a, b))) ? 1 : 0;
    }
  }
  return out;
}
