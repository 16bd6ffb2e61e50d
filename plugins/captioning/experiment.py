"""captioning: an image captioner (CNN encoder, GRU decoder with attention).

The protocol and results: docs/experiments/captioning.md.

Images are split into training, validation and test images (all captions of an image stay
together); the vocabulary comes from the training captions. The decoder learns with teacher
forcing; captions are written greedily, with temperature (several per image, as the post
saw) or by beam search, and scored with BLEU on the test images. The export is one caption
step (``caption_step``): image, token and state in, next-token probabilities and state out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import Field

from tinkerflow.core import (
    DataError,
    DataState,
    DeployInfo,
    Experiment,
    ExperimentConfig,
    ExportSpec,
    Metric,
    SampleOptions,
    Splits,
    knob,
)
from tinkerflow.core.runfs import make_folder, save_figure, write_atomic

from . import captions as caps
from .bleu import corpus_bleu
from .decode import beam_search, sample
from .model import build_captioner, caption_step
from .scenes import ATTRIBUTES, judge_caption


def compiled(model):
    """``model`` as one compiled call on TensorFlow (an eager call per token costs ~4 ms);
    batch sizes may vary without retracing."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda inputs: model(inputs, training=False)
    import tensorflow as tf

    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


@dataclass
class SceneCaptionData:
    name: str = knob("scenes", help="data=scenes: generated shapes with true captions (the default, nothing to "
                                    "download)")
    count: int = knob(6000, min=3, max=200000, help="scenes to generate (images); each split holds different ones")
    captions_per_scene: int = knob(3, min=1, max=10, help="captions drawn per scene (duplicates dropped)")
    max_shapes: int = knob(3, min=1, max=3, help="shapes per scene: 1 up to this")
    seed: int = knob(0, min=0, help="seed of the scenes (the run's seed splits them)")


@dataclass
class EmojiCaptionData:
    name: str = knob("emoji_names", help="data=emoji_names: Noto emoji and their names (npm emoji-datasource-google)")
    categories: list[str] = knob([], help="emoji.json categories to keep (empty: all)")


@dataclass
class CocoCaptionData:
    name: str = knob("coco", help="data=coco: a folder of images and a COCO-style captions JSON")
    images: str = knob("", help="the folder the captions JSON names files in")
    captions: str = knob("", help="the captions JSON ({images: [{id, file_name}], annotations: [{image_id, caption}]})")


@dataclass
class CaptioningConfig(ExperimentConfig):
    image_size: int = knob(32, min=8, max=512, help="images are cropped to the centre square and resized to this")
    caption_length: int = knob(10, min=3, max=64, help="tokens per caption, <start> and <end> included")
    vocab_size: int = knob(2000, min=5, max=1_000_000, help="most frequent training words kept; the rest become <unk>")
    units: int = knob(128, min=1, max=8192, help="GRU units (the decoder's state) and region features")
    embedding_dim: int = knob(64, min=1, max=4096, help="size of a word vector")
    validation: float = knob(0.1, gt=0.0, max=0.5, help="share of images held out for validation")
    test: float = knob(0.1, min=0.0, max=0.5, help="share of images held out for the test (BLEU)")


class CaptioningState(DataState):
    """The vocabulary built from the training captions: ``tokens[i]`` is the word of id ``i``."""

    tokens: list[str] = Field(min_length=4)


@dataclass
class CaptioningSampleOptions(SampleOptions):
    images: str = knob("", help="a photo or a folder of photos to caption; empty: test (or validation) images")
    count: int = knob(8, min=1, max=64, help="images to caption")
    samples: int = knob(3, min=0, max=20, help="captions drawn with temperature per image")
    temperature: float = knob(0.8, gt=0.0, help="temperature of the drawn captions")
    beam_width: int = knob(3, min=1, max=20, help="beams of the beam search")
    seed: int = knob(0, min=0, help="seed of the drawn captions")


def attribute_scores(captions: list[str], truths: list) -> dict[str, float]:
    """Per attribute, the mean of :func:`scenes.judge_caption` over the captions that say
    something about it, and ``attribute``: the mean of those means."""
    judged = [judge_caption(c, t) for c, t in zip(captions, truths)]
    scores = {}
    for name in ATTRIBUTES:
        values = [j[name] for j in judged if j[name] is not None]
        if values:
            scores[name] = float(np.mean(values))
    scores["attribute"] = float(np.mean(list(scores.values()))) if scores else 0.0
    return scores


class Captioning(Experiment):
    name = "captioning"
    description = "An image captioner: CNN encoder, GRU decoder with attention"
    embed_height = 760  # its embed view at 320–900 px wide, after a use
    Config = CaptioningConfig
    Datasets = {"scenes": SceneCaptionData, "emoji_names": EmojiCaptionData, "coco": CocoCaptionData}
    SampleOptions = CaptioningSampleOptions
    State = CaptioningState
    export_spec = ExportSpec(metric=Metric("token_accuracy", higher_is_better=True), margin=0.03)
    smoke_overrides = ("data.count=60", "experiment.image_size=16", "experiment.caption_length=6",
                       "experiment.vocab_size=100", "experiment.units=8", "experiment.embedding_dim=4",
                       "trainer.epochs=1", "trainer.checkpoint_seconds=0")
    config: CaptioningConfig

    # -- data ------------------------------------------------------------------------------

    def read_pairs(self) -> caps.CaptionSet:
        d, size = self.data, self.config.image_size
        if d.name == "scenes":
            return caps.scene_captions(size, d.count, d.seed, d.captions_per_scene, d.max_shapes)
        if d.name == "emoji_names":
            return caps.emoji_captions(size, d.categories)
        if not d.images or not d.captions:
            raise DataError("data=coco needs data.images=<folder> and data.captions=<captions JSON>")
        return caps.coco_captions(d.images, d.captions, size)

    @property
    def vocab(self) -> caps.Vocabulary:
        """The run's vocabulary (its learned state)."""
        return caps.Vocabulary(self.state.tokens)

    @cached_property
    def captioned(self) -> tuple[caps.CaptionSet, dict[str, np.ndarray]]:
        """The captioned images and each split's indices into them (read once per instance)."""
        found = self.read_pairs()
        n = len(found.images)
        order = np.random.default_rng(self.seed).permutation(n)
        n_val = max(1, round(n * self.config.validation))
        n_test = round(n * self.config.test)
        if n - n_val - n_test < 1:
            raise DataError(f"{n} captioned images are too few to hold out validation and test images; expected "
                            "at least 3 (or smaller experiment.validation/test)")
        return found, {"validation": order[:n_val], "test": order[n_val:n_val + n_test],
                       "train": order[n_val + n_test:]}

    def load_data(self) -> Splits:
        found, parts = self.captioned
        vocab = caps.Vocabulary.build([c for i in parts["train"] for c in found.captions[i]], self.config.vocab_size)
        arrays = {k: self._pairs(found, v, vocab) for k, v in parts.items()}
        info = {**found.info, "vocabulary": len(vocab), "images_per_split": {k: int(len(v)) for k, v in parts.items()},
                "pairs_per_split": {k: int(len(v[1])) for k, v in arrays.items()}}
        return Splits(train=arrays["train"], validation=arrays["validation"],
                      test=arrays["test"] if len(parts["test"]) else None, info=info,
                      state=CaptioningState(tokens=vocab.tokens))

    def _pairs(self, found: caps.CaptionSet, indices: np.ndarray, vocab: caps.Vocabulary):
        images, ids = [], []
        for i in indices:
            for caption in found.captions[i]:
                images.append(i)
                ids.append(vocab.encode(caption, self.config.caption_length))
        ids = np.stack(ids) if ids else np.zeros((0, self.config.caption_length), "int32")
        x = [found.images[np.array(images, "int64")].astype("float32"), ids[:, :-1]]
        return x, ids[:, 1:]

    # -- model -------------------------------------------------------------------------------

    def build_model(self):
        import keras

        c = self.config
        model = build_captioner(len(self.vocab), c.image_size, c.caption_length, c.units, c.embedding_dim)
        model.compile(optimizer=self.optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
                      **self.compile_options())
        return model

    def evaluate(self, model, data: Splits) -> dict[str, float]:
        """Test loss and perplexity, and BLEU-1/BLEU-4 of greedy captions on the test images."""
        metrics = super().evaluate(model, data)
        if "test_loss" in metrics:
            metrics["test_perplexity"] = float(np.exp(metrics["test_loss"]))
        found, parts = self.captioned
        split = "test" if len(parts["test"]) else "validation"
        indices = parts[split]
        written = self.greedy(model, found.images[indices].astype("float32"))
        references = [[caps.words(c) for c in found.captions[i]] for i in indices]
        hypotheses = [w.split() for w in written]
        metrics[f"{split}_bleu1"] = corpus_bleu(hypotheses, references, max_n=1)
        metrics[f"{split}_bleu4"] = corpus_bleu(hypotheses, references, max_n=4)
        if found.truth is not None:
            scores = attribute_scores(written, [found.truth[i] for i in indices])
            metrics.update({f"{split}_{name}_accuracy": value for name, value in scores.items()})
        return metrics

    # -- writing captions ----------------------------------------------------------------------

    def stepper(self, model):
        """``(step, state_for(image))`` for :mod:`decode`: the caption step as a numpy function
        whose state is ``[image batch, decoder state]``."""
        step_model = compiled(caption_step(model, self.vocab.index[caps.START]))

        def step(tokens, state):
            images, h = state
            probabilities, h = step_model([images, np.asarray(tokens, "int32")[:, None], h])
            return np.asarray(probabilities), [images, np.asarray(h)]

        def state_for(image):
            return [np.asarray(image, "float32")[None], np.zeros((1, self.config.units), "float32")]

        return step, state_for

    def greedy(self, model, images: np.ndarray) -> list[str]:
        """Greedy captions for a batch of images, decoded side by side."""
        vocab = self.vocab
        step_model = compiled(caption_step(model, vocab.index[caps.START]))
        tokens = np.full((len(images), 1), vocab.index[caps.START], "int32")
        h = np.zeros((len(images), self.config.units), "float32")
        out = np.zeros((len(images), self.config.caption_length - 1), "int32")
        banned = [vocab.index[caps.PAD], vocab.index[caps.START], vocab.index[caps.UNKNOWN]]
        for t in range(self.config.caption_length - 1):
            probabilities, h = step_model([images, tokens, h])
            probabilities = np.asarray(probabilities).copy()
            probabilities[:, banned] = 0.0
            tokens = probabilities.argmax(axis=1).astype("int32")[:, None]
            out[:, t] = tokens[:, 0]
            h = np.asarray(h)
        return [vocab.decode(row) for row in out]

    def sample(self, model, out_dir: Path, options: CaptioningSampleOptions | None = None) -> dict:
        """Captions for test images (or ``--images``): greedy, the best beam, and ``samples``
        drawn with temperature; ``captions.json`` and ``captions.png``."""
        options = options or CaptioningSampleOptions()
        out_dir = make_folder(out_dir)
        if options.images:
            names, images = self._read_images(Path(options.images))
        else:
            found, parts = self.captioned
            indices = parts["test"] if len(parts["test"]) else parts["validation"]
            indices = indices[:options.count]
            names, images = [found.names[i] for i in indices], found.images[indices]
        step, state_for = self.stepper(model)
        vocab = self.vocab
        start, end = vocab.index[caps.START], vocab.index[caps.END]
        banned = (vocab.index[caps.PAD], start, vocab.index[caps.UNKNOWN])
        length = self.config.caption_length - 1
        results = []
        for name, image in zip(names[:options.count], images[:options.count]):
            greedy = vocab.decode(sample(step, state_for(image), start, end, length, banned=banned))
            beams = beam_search(step, state_for(image), start, end, length, width=options.beam_width, banned=banned)
            drawn = [vocab.decode(sample(step, state_for(image), start, end, length, options.temperature,
                                              seed=options.seed + k, banned=banned)) for k in range(options.samples)]
            results.append({"image": name, "greedy": greedy, "beam": vocab.decode(beams[0][0]),
                            "sampled": drawn})
        write_atomic(out_dir / "captions.json", json.dumps(results, indent=1, ensure_ascii=False))
        self._plot(images[:options.count], results, out_dir / "captions.png")
        distinct = np.mean([len(set(r["sampled"])) for r in results]) if options.samples else 0.0
        return {"captions": results, "distinct_sampled_per_image": round(float(distinct), 2),
                "files": ["captions.json", "captions.png"]}

    def _read_images(self, path: Path) -> tuple[list[str], np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        if not path.exists():
            raise DataError(f"'{path}' does not exist; expected a photo or a folder of photos")
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        names, images = [], []
        for f in files:
            try:
                with Image.open(f) as image:
                    images.append(caps.square(image, self.config.image_size))
                    names.append(str(f))
            except (UnidentifiedImageError, OSError):
                continue
        if not images:
            raise DataError(f"no readable image in '{path}'; expected PNG or JPEG files")
        return names, np.stack(images)

    @staticmethod
    def _plot(images: np.ndarray, results: list[dict], path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        columns = min(4, len(images))
        rows = -(-len(images) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for k, (image, r) in enumerate(zip(images, results)):
            ax = axes[k // columns, k % columns]
            ax.imshow(np.asarray(image, "uint8"))
            ax.set_title(f"{r['greedy']}\nbeam: {r['beam']}", fontsize=7)
        fig.tight_layout()
        save_figure(fig, path, dpi=110)
        plt.close(fig)

    # -- export ------------------------------------------------------------------------------

    def export_model(self, model):
        return caption_step(model, self.vocab.index[caps.START])

    def example_inputs(self):
        found, parts = self.captioned
        images = found.images[parts["validation"][:4]].astype("float32")
        n = len(images)
        vocab = self.vocab
        tokens = np.array([[vocab.index[caps.START]], [4], [vocab.index[caps.START]], [5]][:n], "int32")
        tokens = np.minimum(tokens, len(vocab) - 1)
        state = np.random.default_rng(self.seed).normal(0, 0.5, size=(n, self.config.units)).astype("float32")
        return [images, tokens, state]

    def export_metric(self, predict, data: Splits) -> float:
        """Next-token accuracy on up to 200 validation captions, fed word by word (pads left out)."""
        (images, tokens), targets = data.validation
        images, tokens, targets = images[:200], tokens[:200], targets[:200]
        state = np.zeros((len(images), self.config.units), "float32")
        right = total = 0
        for t in range(tokens.shape[1]):
            probabilities, state = predict([images, tokens[:, t:t + 1], state])
            state = np.asarray(state)
            keep = targets[:, t] != 0
            right += int(np.sum(np.asarray(probabilities).argmax(axis=1)[keep] == targets[keep, t]))
            total += int(keep.sum())
        return right / max(total, 1)

    def deploy_info(self) -> DeployInfo:
        c, vocab = self.config, self.vocab
        return DeployInfo(
            description={"image": f"({c.image_size}, {c.image_size}, 3) float32 RGB in 0..255",
                         "token": "the last token (<start> first)", "state": f"({c.units},) zeros to start",
                         "probabilities": "the next token over the vocabulary", "next_state": "pass back"},
            vocabulary=vocab.tokens,
            backend="wasm",  # one small step per token: measured 6.7 ms a caption, webgl 57 ms without a GPU
            settings={"special_ids": {t: vocab.index[t] for t in caps.SPECIALS},
                      "decoding": {"caption_length": c.caption_length, "state_size": c.units,
                                   "loop": "token = <start>, state = zeros; repeat: probabilities, state = "
                                           "step(image, token, state); token = choice; stop at <end>"},
                      "preprocessing": {"size": c.image_size, "crop": "centre square", "background": "white",
                                        "scale": "none: RGB 0..255"}},
        )
