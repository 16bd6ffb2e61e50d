"""The telephone game's other player: a text-to-image generator (the "painter").

It is the dcgan experiment's conditional DCGAN with a caption as the condition: a bag of
the caption's words over the vocabulary (with ``bigrams``, of its neighbouring word pairs
too; with ``normalise``, divided by their total). The generator's first dense layer turns
that vector into a weighted sum of learned word vectors, so the condition is an embedding
of the caption's tokens, learned adversarially on the same image-caption pairs the
captioner uses (every caption of an image is one training pair). On generated scenes an
independent judge (:mod:`judge`) scores what the paintings show.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError, DeployInfo, knob
from tinkerflow.core.runfs import write_atomic
from tinkerflow.plugins.dcgan import film
from tinkerflow.plugins.dcgan.architecture import GanModel
from tinkerflow.plugins.dcgan.datasets import ImageData
from tinkerflow.plugins.dcgan.experiment import Dcgan, DcganConfig, DcganSampleOptions, DcganState

from . import captions as caps
from . import judge, scenes
from .experiment import Captioning, CocoCaptionData, EmojiCaptionData, SceneCaptionData

#: unseen scene captions the judge scores a painter on: 2,000 keep the spread of a score
#: from one set of captions to another under a point (500 moved shape by up to 3)
JUDGED_CAPTIONS = 2000


@dataclass
class TextToImageConfig(DcganConfig):
    vocab_size: int = knob(2000, min=5, max=1_000_000, help="most frequent caption words (and word pairs) kept; the "
                                                            "rest are left out")
    bigrams: bool = knob(False, help="the condition also counts each pair of neighbouring words (\"red circle\"), "
                                     "which binds a colour to its shape")
    normalise: bool = knob(True, help="divide the condition's counts by their total (it sums to 1); false: the "
                                      "counts themselves, which say how many shapes a caption names")


class TextToImageState(DcganState):
    """The dcgan's (a ``word=TERM`` column per vocabulary term, no groups: the caption is the
    condition), the vocabulary of the bags of words, and the 16 training captions the film paints."""

    vocabulary: list[str]
    film_captions: list[str]


@dataclass
class TextToImageSampleOptions(DcganSampleOptions):
    text: str = knob("", help="the caption to paint (empty: the 16 filmed training captions in turn)")
    judge: bool = knob(False, help="also score the painter as training did, with the judge of this machine and "
                                   f"version: {JUDGED_CAPTIONS:,} unseen scene captions, written to judged.json "
                                   "(scenes runs only)")


def terms(text: str) -> list[str]:
    """The caption's words, then each pair of neighbouring words (``"red circle"``)."""
    said = caps.words(text)
    return said + [f"{a} {b}" for a, b in zip(said, said[1:])]


def bag_of_words(text: str, vocab: caps.Vocabulary, normalise: bool = True) -> np.ndarray:
    """How often each vocabulary term is in the caption: its words and, where ``vocab`` has
    them, its word pairs (special tokens and unknown terms left out); with ``normalise``,
    divided by the total."""
    vector = np.zeros(len(vocab), "float32")
    for term in terms(text):
        if term in vocab.index and term not in caps.SPECIALS:
            vector[vocab.index[term]] += 1.0
    total = vector.sum()
    return vector / total if total and normalise else vector


class TextToImage(Dcgan):
    name = "text_to_image"
    description = "A text-to-image DCGAN conditioned on captions (the telephone game's painter)"
    embed_height = 240  # its embed view at 320–900 px wide, after a use
    Config = TextToImageConfig
    Datasets = {"scenes": SceneCaptionData, "emoji_names": EmojiCaptionData, "coco": CocoCaptionData}
    Models = {"dcgan": GanModel}
    SampleOptions = TextToImageSampleOptions
    State = TextToImageState
    export_spec = dataclasses.replace(Dcgan.export_spec, inference_batch=1)  # the telephone game paints one per round
    widget_folder = "web/painter"
    # 16 px: the size whose judge the tests already train (one judge per size, a minute or two each)
    smoke_overrides = ("data.count=60", "experiment.image_size=16", "model.width=4", "model.latent_dim=4",
                       "trainer.batch_size=32", "trainer.epochs=1", "trainer.checkpoint_seconds=0")
    config: TextToImageConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.architecture.conditional = True  # the caption is always the condition

    def read_images(self) -> ImageData:
        reader = Captioning(Captioning.Config(image_size=self.config.image_size), self.trainer, self.seed,
                            data=self.data)
        found = reader.read_pairs()
        vocab = caps.Vocabulary.build([c for cs in found.captions for c in cs], self.config.vocab_size,
                                      tokenize=terms if self.config.bigrams else caps.words)
        rows = [(i, c) for i, cs in enumerate(found.captions) for c in cs]
        conditions = np.stack([self.condition(c, vocab) for _, c in rows])
        film_captions = [c for _, c in rows[:: max(1, len(rows) // 16)]][:16]
        return ImageData(found.images[[i for i, _ in rows]], conditions, [f"word={w}" for w in vocab.tokens], {},
                         {**found.info, "pairs": len(rows), "vocabulary": len(vocab)},
                         learned={"vocabulary": vocab.tokens, "film_captions": film_captions})

    def evaluate(self, model, data) -> dict[str, float]:
        """The dcgan's diversity and, on generated scenes, how often a painting shows what its
        caption names (``painted_<attribute>_accuracy``, judged on :data:`JUDGED_CAPTIONS` new scenes)."""
        metrics = super().evaluate(model, data)
        if self.data.name == "scenes":
            scores = self.judge_paintings(model.generator)
            metrics.update({f"painted_{name}_accuracy": value for name, value in scores.items()})
        return metrics

    def judge_paintings(self, generator, count: int = JUDGED_CAPTIONS) -> dict[str, float]:
        """Paint the captions of ``count`` scenes the painter never saw (their own seed) and
        let the independent :mod:`judge` say what each painting shows."""
        rng = np.random.default_rng([self.seed, self.data.seed, 99])
        captions = [scenes.describe(scenes.random_scene(rng, self.data.max_shapes), rng) for _ in range(count)]
        latent = rng.normal(size=(count, self.architecture.latent_dim)).astype("float32")
        bags = np.stack([self.condition(c) for c in captions])
        pixels = film.to_pixels(generator([latent, bags], training=False))
        return judge.load(self.config.image_size).score(pixels, captions)

    @property
    def vocab(self) -> caps.Vocabulary:
        return caps.Vocabulary(self.state.vocabulary)

    def condition(self, text: str, vocab: caps.Vocabulary | None = None) -> np.ndarray:
        """The painter's condition for ``text`` (zeros when no term of it is known)."""
        return bag_of_words(text, vocab or self.vocab, self.config.normalise)

    def film_inputs(self, n: int = 16, seed: int | None = None, condition: str = ""):
        """Latent vectors and the captions' bags of words: ``condition`` (a caption) for all, or
        the filmed training captions in turn."""
        rng = np.random.default_rng(self.config.film_seed if seed is None else seed)
        z = rng.normal(size=(n, self.architecture.latent_dim)).astype("float32")
        filmed = self.state.film_captions
        texts = [condition] * n if condition else [filmed[i % len(filmed)] for i in range(n)]
        bags = np.stack([self.condition(t) for t in texts])
        if condition and not bags.any():
            raise DataError(f"none of the words of {condition!r} is in the painter's {len(self.vocab)}-word "
                            "vocabulary; expected at least one known word")
        return [z, bags]

    def sample(self, model, out_dir, options=None):
        options = options or TextToImageSampleOptions()
        if options.judge and self.data.name != "scenes":
            raise DataError(f"--judge scores paintings of generated scenes, and this painter was trained on "
                            f"data={self.data.name}; expected a run trained on data=scenes")
        options.condition = options.text
        summary = super().sample(model, out_dir, options)
        summary["text"] = options.text or self.state.film_captions[:options.n]
        if options.judge:
            summary["judged"] = self.judge_paintings(model.generator)
            write_atomic(Path(out_dir) / "judged.json", json.dumps(summary["judged"]))
            summary["files"].append("judged.json")
        return summary

    def deploy_info(self) -> DeployInfo:
        info = super().deploy_info()
        condition = ("the caption's lower-case words, and each two neighbouring words joined by a space, counted over "
                     "the vocabulary (specials and unknown terms left out)"
                     + (", divided by their total (sum 1)" if self.config.normalise else "; the counts themselves"))
        encoding = {"tokenize": "lower-case runs of letters, digits and apostrophes",
                    "terms": "the words, then each two neighbouring words joined by a space; a vocabulary entry with "
                             "a space is such a pair",
                    "vector": "count of each vocabulary term (specials and unknown terms left out)"
                              + (", divided by the total" if self.config.normalise else ""),
                    "normalise": self.config.normalise}
        return dataclasses.replace(
            info, description={**info.description, "condition": condition}, vocabulary=self.state.vocabulary,
            settings={**info.settings, "conditions": {"columns": [], "groups": {}},
                      "examples": self.state.film_captions[:4], "text_encoding": encoding})
