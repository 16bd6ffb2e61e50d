"""An independent judge of pictures of scenes: which colours, shapes and colour-shape pairs
are in a picture, and how many shapes.

It is a small CNN trained on real renders (:func:`scenes.render`) from its own seed, never
on anything the painter made, so it can score the painter: does a painted "red circle"
contain a red circle? Training takes a few minutes; a judge scoring under ``TRUSTED`` for
colour or shape on held-out renders is trained again from another seed. The weights are kept
in the user cache (``$XDG_CACHE_HOME/tinkerflow/judge``) with that accuracy, and retrained
when missing, unreadable or untrusted. Processes that need a missing judge at once (the
jobs of a sweep) wait for the one that trains it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinkerflow.core import TinkerflowError
from tinkerflow.core.lock import cache_lock
from tinkerflow.core.runfs import save_model_atomic, write_atomic

from . import scenes

VERSION = 2
SEED = 20260601
TRUSTED = 0.95  # a judge scoring under this on held-out renders (colour or shape) is trained again
TRIES = 3
BATCH = 64
PAIRS = [(c, s) for c in scenes.COLOURS for s in scenes.SHAPES]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinkerflow" / "judge"
log = logging.getLogger("tinkerflow.judge")


def targets(found: list[scenes.Scene]) -> dict[str, np.ndarray]:
    """The judge's answers for true scenes: colour, shape and pair presence, and count - 1."""
    colours, shapes = list(scenes.COLOURS), list(scenes.SHAPES)
    out = {"colours": np.zeros((len(found), len(colours)), "float32"),
           "shapes": np.zeros((len(found), len(shapes)), "float32"),
           "pairs": np.zeros((len(found), len(PAIRS)), "float32"),
           "count": np.array([len(s.shapes) - 1 for s in found], "int32")}
    for i, scene in enumerate(found):
        for s in scene.shapes:
            out["colours"][i, colours.index(s.colour)] = 1
            out["shapes"][i, shapes.index(s.shape)] = 1
            out["pairs"][i, PAIRS.index((s.colour, s.shape))] = 1
    return out


def build(size: int, steps: int = 0):
    """The judge's network; with ``steps``, compiled to train for that many batches (Adam, its
    rate decaying to zero on a cosine)."""
    import keras

    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(image)
    for filters in (32, 64, 128):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(x))
    outputs = {"colours": keras.layers.Dense(len(scenes.COLOURS), activation="sigmoid", name="colours")(x),
               "shapes": keras.layers.Dense(len(scenes.SHAPES), activation="sigmoid", name="shapes")(x),
               "pairs": keras.layers.Dense(len(PAIRS), activation="sigmoid", name="pairs")(x),
               "count": keras.layers.Dense(3, activation="softmax", name="count")(x)}
    model = keras.Model(image, outputs, name="scene_judge")
    if steps:
        model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
                      loss={"colours": "binary_crossentropy", "shapes": "binary_crossentropy",
                            "pairs": "binary_crossentropy", "count": "sparse_categorical_crossentropy"})
    return model


@dataclass
class Seen:
    """What the judge sees in one picture."""

    colours: set[str]
    shapes: set[str]
    pairs: set[tuple[str, str]]
    count: int


class Judge:
    def __init__(self, model, size: int, accuracy: dict[str, float]):
        self.model, self.size, self.accuracy = model, size, accuracy

    def see(self, images: np.ndarray) -> list[Seen]:
        out = self.model.predict(np.asarray(images, "float32"), batch_size=256, verbose=0)
        colours, shapes = list(scenes.COLOURS), list(scenes.SHAPES)
        return [Seen({colours[j] for j in np.flatnonzero(out["colours"][i] > 0.5)},
                     {shapes[j] for j in np.flatnonzero(out["shapes"][i] > 0.5)},
                     {PAIRS[j] for j in np.flatnonzero(out["pairs"][i] > 0.5)},
                     int(out["count"][i].argmax()) + 1) for i in range(len(images))]

    def score(self, images: np.ndarray, captions: list[str]) -> dict[str, float]:
        """How often each picture shows what its caption names, per attribute (0..1, means
        over pictures): ``colour``, ``shape`` and ``object`` (colour-shape pairs) as the share
        of named and seen items that agree, ``count`` as the share with the named number."""
        rows = []
        for seen, caption in zip(self.see(images), captions):
            said = scenes.parse(caption)
            named_colours = {c for _, c, _ in said.shapes if c}
            named_shapes = {s for _, _, s in said.shapes}
            named_pairs = {(c, s) for _, c, s in said.shapes if c}
            rows.append({"colour": _agreement(named_colours, seen.colours),
                         "shape": _agreement(named_shapes, seen.shapes),
                         "object": _agreement(named_pairs, seen.pairs),
                         "count": float(len(said.shapes) == seen.count)})
        return {k: float(np.mean([r[k] for r in rows])) for k in ("colour", "shape", "object", "count")}


def _agreement(named: set, seen: set) -> float:
    if not named and not seen:
        return 1.0
    return len(named & seen) / len(named | seen)


def trusted(accuracy: dict[str, float]) -> bool:
    """Whether a judge with this accuracy on held-out renders sees colours and shapes well enough to score."""
    return min(accuracy.get("colour", 0.0), accuracy.get("shape", 0.0)) >= TRUSTED


def train(size: int, count: int = 12000, epochs: int = 12) -> Judge:
    """A judge trained on ``count`` renders, with its accuracy on 1,000 more. Training on CPU
    threads is not bit-reproducible; a result that is still untrusted (a head stalled) is
    trained again from the next seed, up to ``TRIES`` times."""
    for attempt in range(TRIES):
        judge = _trained(size, count, epochs, SEED + attempt)
        if trusted(judge.accuracy):
            return judge
        log.warning("the scene judge for %d-pixel pictures learnt too little (%s on held-out renders); "
                    "training it again", size, judge.accuracy)
    raise TinkerflowError(f"the scene judge for {size}-pixel pictures scored {judge.accuracy} on held-out renders "
                          f"after {TRIES} tries; expected colour and shape of at least {TRUSTED}")


def _trained(size: int, count: int, epochs: int, seed: int) -> Judge:
    import keras

    keras.utils.set_random_seed(seed)
    found, images, _ = scenes.scene_set(count + 1000, size, SEED, 1)
    answers = targets(found)
    model = build(size, steps=epochs * -(-count // BATCH))
    model.fit(images[:count].astype("float32"), {k: v[:count] for k, v in answers.items()}, epochs=epochs,
              batch_size=BATCH, verbose=0)
    judge = Judge(model, size, {})
    captions = [scenes.describe(s, np.random.default_rng(i)) for i, s in enumerate(found[count:])]
    judge.accuracy = judge.score(images[count:], captions)
    return judge


def load(size: int, cache: Path | None = None) -> Judge:
    """The judge for ``size``-pixel pictures from the cache, trained (and cached) when missing."""
    folder = Path(cache or CACHE)
    weights = folder / f"scenes-{size}px-v{VERSION}.weights.h5"
    record = weights.with_suffix("").with_suffix(".json")
    with cache_lock(folder / f".{weights.name}.lock", f"the scene judge for {size}-pixel pictures"):
        judge = _cached(size, weights, record)
        if judge is not None:
            return judge
        log.warning("training the scene judge for %d-pixel pictures once (a few minutes); it is kept in %s",
                    size, folder)
        judge = train(size)
        save_model_atomic(judge.model, weights, weights_only=True)
        write_atomic(record, json.dumps({"size": size, "version": VERSION, "seed": SEED, "accuracy": judge.accuracy}))
        return judge


def _cached(size: int, weights: Path, record: Path) -> Judge | None:
    """The judge kept in ``weights`` when it loads and its ``record`` says it is trusted."""
    if not (weights.is_file() and record.is_file()):
        return None
    try:
        model = build(size)
        model.load_weights(weights)
        accuracy = json.loads(record.read_text(encoding="utf-8"))["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # ours to rebuild: retrained
    return Judge(model, size, accuracy) if trusted(accuracy) else None
