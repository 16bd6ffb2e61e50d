// A caption as a text-conditioned model's input, as its manifest's text_encoding declares:
// lower-case words, then each two neighbouring words joined by a space, counted over the
// model's vocabulary (specials and unknown terms left out) and, unless text_encoding says
// normalise: false, divided by their total. Python's copy: plugins/captioning/painter.py,
// bag_of_words.
const SPECIALS = new Set(["<pad>", "<start>", "<end>", "<unk>"]);

export function termsOf(text) {
  const words = (text || "").toLowerCase().match(/[a-z0-9']+/g) || [];
  return words.concat(words.slice(1).map((word, i) => `${words[i]} ${word}`));
}

export function textVector(text, manifest) {
  const index = new Map(manifest.vocabulary.map((term, i) => [term, i]));
  const vector = new Float32Array(manifest.vocabulary.length);
  let total = 0;
  for (const term of termsOf(text)) {
    if (index.has(term) && !SPECIALS.has(term)) { vector[index.get(term)] += 1; total += 1; }
  }
  const normalise = !manifest.text_encoding || manifest.text_encoding.normalise !== false;
  if (total && normalise) for (let i = 0; i < vector.length; i++) vector[i] /= total;
  return { vector, total };
}
