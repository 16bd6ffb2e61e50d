"""dcgan: a DCGAN drawing ellipses, emoji faces, digits or your images.

The protocol and results: docs/experiments/dcgan.md.

``data=`` picks the data set (ellipses, emoji, digits, folder), ``model.*`` the network.
Every epoch the same 16 latent vectors go through the generator into one grid (the
training film); with ``model.conditional=true`` both networks also see each image's class
or attributes, and sampling can fix them. The export is the generator alone, returning RGB
pixels in 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

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
from tinkerflow.core.records import FilmRecord, read_metrics_csv, read_record
from tinkerflow.core.runfs import make_folder, save_image
from tinkerflow.core.runs import load_trained_model

from . import datasets as sets
from . import film
from .architecture import GanModel, depth_for


def _networks():
    """The plugin's Keras side, :mod:`.model` (which imports Keras and TensorFlow), loaded on
    first use: listing and configuring the plugin never imports them."""
    from . import model

    return model


@dataclass
class DcganConfig(ExperimentConfig):
    image_size: int = knob(32, min=8, max=256, help="generated image size: 8, 16, 32, 64, 128 or 256")
    film_seed: int = knob(1234, min=0, help="seed of the 16 latent vectors filmed every epoch")


class DcganState(DataState):
    """The conditions of a conditional run (empty otherwise): ``columns``, one per input
    column (``colour=red``), and ``groups``, each attribute's values in column order."""

    columns: list[str] = Field(default_factory=list)
    groups: dict[str, list[Any]] = Field(default_factory=dict)


@dataclass
class DcganSampleOptions(SampleOptions):
    n: int = knob(16, min=1, max=256, help="images to generate")
    seed: int = knob(0, min=0, help="seed of the latent vectors")
    condition: str = knob("", help="conditional models: e.g. colour=red or digit=7 (empty: every class in turn)")


class Dcgan(Experiment):
    name = "dcgan"
    description = "A DCGAN drawing ellipses, emoji faces, digits or your images"
    embed_height = 1080  # its embed view at 320–900 px wide, after a use
    backends = ("tensorflow",)  # its train_step is TensorFlow code (tf.GradientTape)
    Config = DcganConfig
    Datasets = {"ellipses": sets.EllipsesData, "emoji": sets.EmojiData, "digits": sets.DigitsData,
                "folder": sets.FolderData}
    Models = {"dcgan": GanModel}
    SampleOptions = DcganSampleOptions
    State = DcganState
    objective = Metric("final_diversity", higher_is_better=True)
    # the page's grid: one call draws all 16; latent numbers and one-hot conditions in, pixels out;
    # a quantized generator may add a mean |exported - Keras| of 8 levels (of 0..255)
    export_spec = ExportSpec(metric=Metric("pixel_difference"), margin=8.0, inference_batch=16, integer_io=True)
    smoke_overrides = ("data.count=64", "experiment.image_size=8", "model.width=4", "model.latent_dim=4",
                       "trainer.batch_size=32", "trainer.epochs=2", "trainer.checkpoint_seconds=0")
    config: DcganConfig
    architecture: GanModel

    # -- data ------------------------------------------------------------------------------

    def read_images(self) -> sets.ImageData:
        size, d = self.config.image_size, self.data
        if d.name == "ellipses":
            return sets.ellipses(d, size)
        if d.name == "emoji":
            return sets.emoji(d, size)
        if d.name == "digits":
            return sets.digits(d, size)
        return sets.folder(d, size, self.architecture.conditional)

    @cached_property
    def images(self) -> sets.ImageData:
        """The training images (read once per instance)."""
        return self.read_images()

    @property
    def conditions(self) -> dict:
        """The run's learned state as a dict: ``{"columns": [...], "groups": {attribute: [values]}}``."""
        return self.state.model_dump()

    @property
    def reference(self) -> np.ndarray:
        """16 training images the film's diversity is measured against."""
        images = self.images.images
        return images[np.random.default_rng(0).permutation(len(images))[:16]]

    def load_data(self) -> Splits:
        depth_for(self.config.image_size)
        found = self.images
        conditional = self.architecture.conditional
        if conditional and found.conditions is None:
            raise DataError(f"data={self.data.name} with style {getattr(self.data, 'style', '')} has nothing to "
                            "condition on; expected a data set with classes or attributes (ellipses in colour, "
                            "emoji, digits, a folder with attribute files) or model.conditional=false")
        if len(found.images) < self.trainer.batch_size:
            raise DataError(f"{len(found.images)} images are fewer than one batch (trainer.batch_size="
                            f"{self.trainer.batch_size}); expected more images or a smaller batch")
        state = self.State(columns=found.condition_names if conditional else [],
                           groups=found.groups if conditional else {}, **found.learned)
        x = found.images.astype("float32") / 127.5 - 1.0
        train = (x, found.conditions) if conditional else (x, None)
        return Splits(train=train, validation=None, test=None, state=state,
                      info={**found.info, "image_size": self.config.image_size,
                            "condition_columns": len(state.columns)})

    # -- model -------------------------------------------------------------------------------

    def build_model(self):
        m, size = self.architecture, self.config.image_size
        k = len(self.state.columns)
        networks = _networks()
        gan = networks.DCGAN(networks.build_generator(m, size, k), networks.build_discriminator(m, size, k),
                             m.latent_dim, m.label_smoothing, m.noise, seed=self.seed, mismatch=m.mismatch,
                             auxiliary=m.auxiliary, name="dcgan")
        gan.compile(learning_rate=m.learning_rate, average=m.average)
        gan(self.film_inputs(), training=False)  # builds it
        return gan

    def custom_objects(self) -> dict:
        return {"DCGAN": _networks().DCGAN}

    def film_inputs(self, n: int = 16, seed: int | None = None, condition: str = ""):
        """``n`` latent vectors (seeded) and, for a conditional model, conditions: the one named
        (``colour=red``; several attributes separated by commas) or each class in turn."""
        rng = np.random.default_rng(self.config.film_seed if seed is None else seed)
        z = rng.normal(size=(n, self.architecture.latent_dim)).astype("float32")
        columns, groups = self.state.columns, self.state.groups
        if not columns:
            if condition:
                raise DataError("--condition needs a conditional model; this run has none")
            return z
        fixed = dict(part.split("=", 1) for part in condition.split(",") if "=" in part) if condition else {}
        for attribute, value in fixed.items():
            if attribute not in groups or value not in groups[attribute]:
                options = ", ".join(f"{a}={v}" for a in groups for v in groups[a][:3])
                raise DataError(f"--condition {attribute}={value} is not a condition of this run; expected e.g. "
                                f"{options}")
        c = np.zeros((n, len(columns)), "float32")
        for i in range(n):
            for attribute, values in groups.items():
                value = fixed.get(attribute, values[i % len(values)])
                c[i, columns.index(f"{attribute}={value}")] = 1.0
        return [z, c]

    def callbacks(self) -> list:
        folder = (self.run.samples_dir if self.run is not None else Path("samples")) / "film"
        return [*super().callbacks(), film.film_callback(self.film_inputs(), self.reference, folder)]

    def fit(self, model, data: Splits, callbacks: list):
        x, conditions = data.train
        start = self.resume_into(model)
        return model.fit(x, conditions, batch_size=self.trainer.batch_size, epochs=self.trainer.epochs,
                         initial_epoch=start, callbacks=callbacks, shuffle=True, verbose=0)

    def evaluate(self, model, data: Splits) -> dict[str, float]:
        """The last diversity score of the film (``samples/film/film.json``)."""
        saved = self.run.samples_dir / "film" / "film.json" if self.run is not None else None
        if saved is None or not saved.is_file():
            return {}
        scores = read_record(saved, FilmRecord, "the film.json of a dcgan run").diversity
        return {"final_diversity": scores[-1]} if scores else {}

    # -- looking at it -----------------------------------------------------------------------

    def sample(self, model, out_dir: Path, options: DcganSampleOptions | None = None) -> dict:
        """A grid of ``options.n`` generated images; after training also the training film
        (GIF, and MP4 with ffmpeg) and the loss and diversity curves."""
        from PIL import Image

        options = options or DcganSampleOptions()
        out_dir = make_folder(out_dir)
        pixels = film.to_pixels(model.generator(self.film_inputs(options.n, options.seed, options.condition),
                                                training=False))
        name = f"samples_n{options.n}_seed{options.seed}.png"
        columns = min(options.n, 4 if options.n <= 16 else 8)
        save_image(Image.fromarray(film.grid(pixels, columns=columns)), out_dir / name)
        summary = {"n": options.n, "seed": options.seed, "condition": options.condition, "files": [name]}
        film_dir = self.run.samples_dir / "film" if self.run is not None else None
        if options == DcganSampleOptions() and film_dir is not None and film_dir.is_dir():
            summary["files"] += film.stitch(film_dir, out_dir)
            scores = read_record(film_dir / "film.json", FilmRecord, "the film.json of a dcgan run").diversity
            film.plot_curves(self._history(), scores, out_dir / "curves.png")
            summary["files"].append("curves.png")
            summary["diversity"] = scores
        return summary

    def _history(self) -> dict:
        if self.run is None:
            return {}
        rows = read_metrics_csv(self.run.path / "metrics.csv")
        return {key: [r[key] for r in rows if key in r] for key in ("d_loss", "g_loss")}

    # -- export ------------------------------------------------------------------------------

    def export_model(self, model):
        """The generator alone, returning RGB pixels in 0..255."""
        import keras

        generator = model.generator
        pixels = keras.layers.Rescaling(127.5, offset=127.5, name="pixels")(generator.output)
        return keras.Model(generator.input, pixels, name="generator")

    def example_inputs(self):
        return self.film_inputs(8, seed=7)

    def representative_data(self):
        for seed in range(8):
            yield self.film_inputs(16, seed=100 + seed)

    def export_metric(self, predict, data: Splits) -> float:
        """Mean |pixel - Keras' pixel| in 0..255 levels over 64 generated images (Keras' are
        the run's saved generator's)."""
        inputs = self.film_inputs(64, seed=11)
        exported = np.asarray(predict(inputs), "float64")
        return float(np.mean(np.abs(exported - self.keras_pixels.reshape(exported.shape))))

    @cached_property
    def keras_pixels(self) -> np.ndarray:
        """The trained run's generator on :meth:`export_metric`'s 64 inputs."""
        import keras

        if self.run is None:
            raise DataError("the dcgan's export metric compares with a trained run's generator; expected a run")
        generator = self.export_model(load_trained_model(self.run, self))
        return keras.ops.convert_to_numpy(generator(self.film_inputs(64, seed=11), training=False)).astype("float64")

    def deploy_info(self) -> DeployInfo:
        size = self.config.image_size
        return DeployInfo(
            description={"latent": f"({self.architecture.latent_dim},) standard normal numbers per image",
                         "condition": "one-hot blocks, one per attribute (conditional models only)",
                         "pixels": f"({size}, {size}, 3) RGB in 0..255"},
            settings={"latent_dim": self.architecture.latent_dim, "conditions": self.conditions,
                      "postprocessing": {"pixels": "round and clip to 0..255"},
                      "generation": {"grid": self.export_spec.inference_batch, "interpolation_steps": 8}},
        )
