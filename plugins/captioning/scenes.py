"""Procedurally generated scenes: the offline default data of captioning and text_to_image.

A scene is one to three shapes on white, each with a colour, a shape, a size and a place
on a 3×3 grid. Captions come from a small grammar that varies its wording ("a small red
circle left of a blue square", "a blue box and a little red ball"), and always say the
truth of the scene: every shape it names is there, with the colour and size it gives, and
a relation it states holds. Everything is drawn from a seed, so a data set is reproducible
and as large as asked, and the ground truth of every image is kept, which is what makes
the captioner, the painter and the telephone game measurable (:func:`judge_caption`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

COLOURS = {"red": (220, 40, 40), "orange": (245, 140, 20), "yellow": (230, 205, 20),
           "green": (40, 165, 60), "blue": (40, 90, 220), "purple": (140, 60, 190)}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
RELATIONS = ("left of", "right of", "above", "below")

SHAPE_WORDS = {"circle": ("circle", "ball"), "square": ("square", "box"), "triangle": ("triangle",)}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
ATTRIBUTES = ("colour", "shape", "count", "size", "relation")

_WORD_SHAPE = {w: s for s, words in SHAPE_WORDS.items() for w in words}
_WORD_SIZE = {w: s for s, words in SIZE_WORDS.items() for w in words}
_RADIUS = {"small": 0.10, "large": 0.16}   # of the image side
_CENTRES = (1 / 6, 1 / 2, 5 / 6)


@dataclass(frozen=True)
class Shape:
    """One shape of a scene: ``column`` and ``row`` are its cell on the 3×3 grid (0 = left, top)."""

    colour: str
    shape: str
    size: str
    column: int
    row: int


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]

    def to_dict(self) -> dict:
        return {"shapes": [asdict(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, value: dict) -> "Scene":
        return cls(tuple(Shape(**s) for s in value["shapes"]))


def holds(relation: str, a: Shape, b: Shape) -> bool:
    """Whether "a <relation> b" is true of the two cells."""
    return {"left of": a.column < b.column, "right of": a.column > b.column,
            "above": a.row < b.row, "below": a.row > b.row}[relation]


def random_scene(rng: np.random.Generator, max_shapes: int = 3) -> Scene:
    count = int(rng.integers(1, max_shapes + 1))
    cells = rng.choice(9, size=count, replace=False)
    return Scene(tuple(Shape(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), str(rng.choice(SIZES)),
                             int(c % 3), int(c // 3)) for c in cells))


def render(scene: Scene, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The scene as a ``(size, size, 3)`` uint8 RGB image, drawn at four times the size and
    scaled down (smooth edges); ``rng`` moves each shape a little within its cell."""
    from PIL import Image, ImageDraw

    big = size * 4
    image = Image.new("RGB", (big, big), "white")
    draw = ImageDraw.Draw(image)
    for s in scene.shapes:
        jitter = rng.uniform(-0.03, 0.03, size=2) if rng is not None else np.zeros(2)
        cx, cy = (_CENTRES[s.column] + jitter[0]) * big, (_CENTRES[s.row] + jitter[1]) * big
        r = _RADIUS[s.size] * big
        colour = COLOURS[s.colour]
        if s.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif s.shape == "square":
            h = r * 0.88
            draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=colour)
        else:
            draw.polygon([(cx, cy - r), (cx + r * 1.05, cy + r * 0.8), (cx - r * 1.05, cy + r * 0.8)], fill=colour)
    return np.asarray(image.resize((size, size), Image.LANCZOS), dtype="uint8")


def _phrase(s: Shape, rng: np.random.Generator) -> str:
    words = [str(rng.choice(SIZE_WORDS[s.size]))] if rng.random() < 0.6 else []
    words += [s.colour, str(rng.choice(SHAPE_WORDS[s.shape]))]
    return " ".join(["an" if words[0][0] in "aeiou" else "a", *words])


def describe(scene: Scene, rng: np.random.Generator) -> str:
    """One true caption of ``scene`` in words chosen by ``rng``."""
    order = list(rng.permutation(len(scene.shapes)))
    shapes = [scene.shapes[i] for i in order]
    phrases = [_phrase(s, rng) for s in shapes]
    if len(shapes) == 1:
        return str(rng.choice([phrases[0], f"just {phrases[0]}", f"{phrases[0]} on its own"]))
    true = [r for r in RELATIONS if holds(r, shapes[0], shapes[1])]
    first = f"{phrases[0]} {rng.choice(true)} {phrases[1]}" if rng.random() < 0.6 else f"{phrases[0]} and {phrases[1]}"
    if len(shapes) == 2:
        return first
    if " and " in first:
        return f"{phrases[0]} {phrases[1]} and {phrases[2]}"
    return f"{first} and {phrases[2]}"


@dataclass
class Said:
    """What a caption says: its shapes (size may be None) and the relation it states between
    its first two shapes, if any."""

    shapes: list[tuple[str | None, str | None, str]] = field(default_factory=list)  # (size, colour, shape)
    relation: str | None = None


def words(caption: str) -> list[str]:
    """Lower-case words: letters, digits and apostrophes; everything else separates."""
    return re.findall(r"[a-z0-9']+", caption.lower())


def parse(caption: str) -> Said:
    """Read a caption back into shapes and a relation; words it does not know are skipped,
    so a garbled caption gives what can be read of it."""
    tokens = words(caption)
    said, size, colour = Said(), None, None
    k = 0
    while k < len(tokens):
        word = tokens[k]
        pair = " ".join(tokens[k:k + 2])
        if word in _WORD_SIZE:
            size = _WORD_SIZE[word]
        elif word in COLOURS:
            colour = word
        elif word in _WORD_SHAPE:
            said.shapes.append((size, colour, _WORD_SHAPE[word]))
            size = colour = None
        elif pair in ("left of", "right of") or word in ("above", "below"):
            if len(said.shapes) == 1 and said.relation is None:
                said.relation = pair if pair in RELATIONS else word
            k += pair in RELATIONS
        k += 1
    return said


def _overlap(said: list, true: list) -> float:
    """Matched items over the larger of the two lists (1.0 when both are empty)."""
    if not said and not true:
        return 1.0
    left = list(true)
    matched = 0
    for item in said:
        if item in left:
            left.remove(item)
            matched += 1
    return matched / max(len(said), len(true))


def judge_caption(caption: str, truth: Scene) -> dict[str, float | None]:
    """How much of ``truth`` the caption gets right, per attribute, each in 0..1:
    ``colour`` and ``shape`` (the named colours and shapes against the scene's, matched as
    multisets), ``count`` (the right number of shapes), ``size`` (the sizes named for shapes
    that are there) and ``relation`` (a stated relation holds between the shapes it joins).
    ``size`` and ``relation`` are None when the caption says nothing about them."""
    said = parse(caption)
    true = list(truth.shapes)
    scores: dict[str, float | None] = {
        "colour": _overlap([c for _, c, _ in said.shapes if c], [s.colour for s in true]),
        "shape": _overlap([s for _, _, s in said.shapes], [s.shape for s in true]),
        "count": float(len(said.shapes) == len(true)),
    }
    sized = [(size, colour, shape) for size, colour, shape in said.shapes if size]
    right = 0
    for size, colour, shape in sized:
        right += any(s.size == size and s.shape == shape and colour in (None, s.colour) for s in true)
    scores["size"] = right / len(sized) if sized else None
    scores["relation"] = None
    if said.relation is not None and len(said.shapes) >= 2:
        firsts = [s for s in true if s.shape == said.shapes[0][2] and said.shapes[0][1] in (None, s.colour)]
        seconds = [s for s in true if s.shape == said.shapes[1][2] and said.shapes[1][1] in (None, s.colour)]
        scores["relation"] = float(any(holds(said.relation, a, b) for a in firsts for b in seconds if a != b))
    return scores


def truth_of(caption: str) -> Scene:
    """The scene a caption describes, as far as it says (for a telephone game started from
    text): sizes it leaves out count as small, places follow its relation or go left to right."""
    said = parse(caption)
    cells = [(0, 1), (2, 1), (1, 0)]
    if said.relation in ("right of",):
        cells[0], cells[1] = (2, 1), (0, 1)
    elif said.relation == "above":
        cells[0], cells[1] = (1, 0), (1, 2)
    elif said.relation == "below":
        cells[0], cells[1] = (1, 2), (1, 0)
    shapes = [Shape(colour or "", shape, size or "small", *cells[i % 3])
              for i, (size, colour, shape) in enumerate(said.shapes[:3])]
    return Scene(tuple(shapes))


def scene_set(count: int, size: int, seed: int, captions_per_scene: int, max_shapes: int = 3):
    """``count`` seeded scenes: their images, ``captions_per_scene`` captions each and their
    ground truth (:class:`Scene` per image)."""
    rng = np.random.default_rng([seed, 7])
    scenes = [random_scene(rng, max_shapes) for _ in range(count)]
    images = np.stack([render(s, size, rng) for s in scenes])
    captions = [list(dict.fromkeys(describe(s, rng) for _ in range(captions_per_scene))) for s in scenes]
    return scenes, images, captions
