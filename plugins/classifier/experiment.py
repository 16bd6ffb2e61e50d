"""classifier: "is it my dog?" — a small CNN or MobileNetV2 transfer learning.

The protocol and results: docs/experiments/classifier.md.

The data is a folder with one subfolder per class (the post: 263 photos of the dog and 263 of
anything else), or, offline, scikit-image's LFW subset ("is it a face?"). Images are
prepared once (see ``images.py``), split by class (stratified), augmented inside the
training model only; the exported model is the inference part, pixels in, probabilities out.
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
    ImageClassifierSpec,
    Metric,
    SampleOptions,
    Splits,
    knob,
)
from tinkerflow.core.batch_order import shuffled_batches
from tinkerflow.core.initial_weights import redraw
from tinkerflow.core.runfs import make_folder, write_atomic

from . import images as imgs
from . import insight
from .models import MobileNetV2Model, SimpleModel, build_core, find_layer, fine_tune

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


@dataclass
class ClassifierData:
    path: str = knob("", help="a folder with one subfolder of photos per class; empty: the LFW subset (faces)")
    balance: bool = knob(False, help="sample every class down to the smallest one (the post: 263 and 263)")
    validation: float = knob(0.2, gt=0.0, max=0.5, help="share of each class held out for validation")
    test: float = knob(0.1, min=0.0, max=0.5, help="share of each class held out for the test")
    max_pixels: int = knob(50_000_000, min=1, help="skip (and count) images with more pixels than this")


@dataclass
class ClassifierConfig(ExperimentConfig):
    image_size: int = knob(96, min=8, max=1024, help="images are cropped to the centre square and resized to this")
    augment: bool = knob(True, help="random flips, small rotations and zooms while training")
    positive_class: str = knob("", help="the class a false positive is wrongly called (default: the first class)")
    gallery: int = knob(8, min=1, max=64, help="images per gallery: confident mistakes, heat maps")


class ClassifierState(DataState):
    """The class names, in output order (the class folders', sorted)."""

    classes: list[str] = Field(min_length=2)


@dataclass
class ClassifierSampleOptions(SampleOptions):
    images: str = knob("", help="a folder (or one file) of photos to classify; empty: the validation images")


class Classifier(Experiment):
    name = "classifier"
    description = '"Is it my dog?": a small CNN or MobileNetV2 transfer learning'
    embed_height = 540  # its embed view at 320–900 px wide, after a use
    Config = ClassifierConfig
    Data = ClassifierData
    Models = {"simple": SimpleModel, "mobilenet_v2": MobileNetV2Model}
    SampleOptions = ClassifierSampleOptions
    State = ClassifierState
    objective = Metric("best_val_accuracy", higher_is_better=True)
    # both models take RGB in 0..255 and scale it themselves
    export_spec = ExportSpec(metric=Metric("accuracy", higher_is_better=True), margin=0.03, integer_io=True,
                             image_classifier=ImageClassifierSpec(mean=(0.0,), std=(1.0,)))
    smoke_overrides = ("experiment.image_size=24", "model.filters=[4,4,4]", "model.dense=8", "trainer.epochs=2",
                       "trainer.checkpoint_seconds=0")
    config: ClassifierConfig
    data: ClassifierData

    # -- data ------------------------------------------------------------------------------

    def read_images(self) -> imgs.ImageSet:
        size = self.config.image_size
        found = imgs.read_folder(self.data.path, size, self.data.max_pixels) if self.data.path else imgs.read_lfw(size)
        return imgs.balance(found, self.seed) if self.data.balance else found

    @cached_property
    def photos(self) -> tuple[imgs.ImageSet, dict[str, np.ndarray]]:
        """The prepared images and each split's indices into them (read once per instance; a
        trained run's classes must still be the folder's)."""
        found = self.read_images()
        if self._state is not None and found.classes != self.state.classes:
            raise DataError(f"the class folders are now {found.classes}, the run was trained on "
                            f"{self.state.classes}; expected the same classes")
        validation, test, train = imgs.stratified_split(found.labels, (self.data.validation, self.data.test),
                                                        self.seed)
        return found, {"train": train, "validation": validation, "test": test}

    @property
    def classes(self) -> list[str]:
        """The class names, in output order (the run's learned state)."""
        return list(self.state.classes)

    @property
    def positive(self) -> int:
        return positive_index(self.config.positive_class, self.classes)

    def load_data(self) -> Splits:
        found, parts = self.photos
        positive_index(self.config.positive_class, found.classes)  # a wrong positive_class fails before training
        train, validation, test = parts["train"], parts["validation"], parts["test"]
        if len(train) < len(found.classes):
            raise DataError(f"{len(found.labels)} images are too few to hold out validation and test images; "
                            "expected at least a few images per class")
        x = found.images.astype("float32")
        info = {"source": self.data.path or "lfw_subset", "images": int(len(found.labels)),
                "classes": found.counts(), "skipped": dict(found.skipped), "skipped_examples": found.skipped_examples,
                "split": {k: int(len(v)) for k, v in parts.items()}, "image_size": self.config.image_size}
        return Splits(train=(x[train], found.labels[train]), validation=(x[validation], found.labels[validation]),
                      test=(x[test], found.labels[test]) if len(test) else None, info=info,
                      state=ClassifierState(classes=list(found.classes)))

    # -- model -------------------------------------------------------------------------------

    def build_model(self):
        import keras

        size = self.config.image_size
        core = build_core(self.architecture, size, len(self.classes))
        inputs = keras.Input((size, size, 3), name="image")
        x = inputs
        if self.config.augment:
            x = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=self.seed),
                                  keras.layers.RandomRotation(0.05, seed=self.seed),
                                  keras.layers.RandomZoom(0.1, seed=self.seed)], name="augment")(x)
        model = keras.Model(inputs, core(x), name="training")
        self.compile(model, self.optimizer())
        return model

    def compile(self, model, optimizer) -> None:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      **self.compile_options())

    def initialize(self, model) -> None:
        """Starting weights from the seed, except a MobileNetV2 base's pretrained ones."""
        arch = self.architecture
        pretrained = isinstance(arch, MobileNetV2Model) and arch.weights.lower() != "none"
        redraw(model, self.seed, keep=[find_layer(model, "features")] if pretrained else ())

    def fit(self, model, data: Splits, callbacks: list):
        """The trainer's epochs; then, with ``model.fine_tune_layers``, a second phase with the
        base's top layers unfrozen at ``model.fine_tune_learning_rate``."""
        import keras

        resumed_phase = (self.resumed.extra if self.resumed else {}).get("fine_tune_from")
        history = super().fit(model, data, callbacks) if resumed_phase is None else None
        arch = self.architecture
        if not fine_tune(model.get_layer("classifier"), arch):
            return history
        self.compile(model, keras.optimizers.Adam(arch.fine_tune_learning_rate))
        if resumed_phase is not None:
            done = resumed_phase
        else:
            done = history.epoch[-1] + 1 if history.epoch else self.resume_into(model)
        self.checkpoint_extra["fine_tune_from"] = done
        start = max(done, self.resume_into(model))
        x, y = data.train
        batches, order = shuffled_batches(x, y, self.trainer.batch_size, self.seed, start)
        return model.fit(batches, validation_data=data.validation, epochs=done + arch.fine_tune_epochs,
                         initial_epoch=start, callbacks=[order, *callbacks], shuffle=False, verbose=0)

    def evaluate(self, model, data: Splits) -> dict[str, float]:
        metrics = super().evaluate(model, data)
        x, y = data.test if data.test is not None else data.validation
        predicted = np.asarray(model.predict(x, verbose=0)).argmax(axis=1)
        stats = insight.precision_recall(insight.confusion(y, predicted, len(self.classes)), self.classes)
        positive = stats[self.classes[self.positive]]
        metrics.update(test_precision=positive["precision"], test_recall=positive["recall"])
        return metrics

    # -- looking at it -----------------------------------------------------------------------

    def sample(self, model, out_dir: Path, options: ClassifierSampleOptions | None = None) -> dict:
        """Without ``options.images``: the confusion matrix, precision and recall, the most
        confident false positives and negatives, and Grad-CAM heat maps on validation images.
        With it: each photo's class and probabilities, and its heat map."""
        import keras

        options = options or ClassifierSampleOptions()
        out_dir = make_folder(out_dir)
        core = model.get_layer("classifier") if any(l.name == "classifier" for l in model.layers) else model
        heat = keras.backend.backend() == "tensorflow"
        if options.images:
            return self._classify_files(core, Path(options.images), out_dir, heat)
        found, parts = self.photos
        index = parts["validation"]
        x, y = found.images[index], found.labels[index]
        probabilities = np.asarray(core.predict(x.astype("float32"), verbose=0))
        matrix = insight.confusion(y, probabilities.argmax(axis=1), len(self.classes))
        insight.plot_confusion(matrix, self.classes, out_dir / "confusion.png")
        files = ["confusion.png"]
        mistakes = insight.confident_mistakes(y, probabilities, self.positive, self.config.gallery)
        named = {}
        for kind, picks in mistakes.items():
            named[kind] = [{"file": found.files[index[i]], "true": self.classes[y[i]],
                            "predicted": self.classes[int(probabilities[i].argmax())],
                            "probability": round(float(probabilities[i].max()), 4)} for i in picks]
        picks = mistakes["false_positives"] + mistakes["false_negatives"]
        if picks:
            titles = [f"{m['true']} → {m['predicted']} {m['probability']:.2f}" for m in
                      named["false_positives"] + named["false_negatives"]]
            insight.plot_gallery(x[picks], titles, out_dir / "mistakes.png",
                                 insight.grad_cam(core, x[picks]) if heat else None)
            files.append("mistakes.png")
        shown = np.random.default_rng(self.seed).permutation(len(x))[:self.config.gallery]
        titles = [f"{self.classes[y[i]]}: {self.classes[int(probabilities[i].argmax())]} "
                  f"{probabilities[i].max():.2f}" for i in shown]
        insight.plot_gallery(x[shown], titles, out_dir / "what_it_sees.png",
                             insight.grad_cam(core, x[shown]) if heat else None)
        files.append("what_it_sees.png")
        return {"split": "validation", "images": int(len(y)), "accuracy": round(float(np.mean(
                    probabilities.argmax(axis=1) == y)), 4), "positive_class": self.classes[self.positive],
                "confusion": {"classes": self.classes, "matrix": matrix.tolist()},
                "per_class": insight.precision_recall(matrix, self.classes), **named,
                "heat_maps": "Grad-CAM" if heat else "none (they need the TensorFlow backend: tinkerflow sample RUN)",
                "files": files}

    def prepare_files(self, path: Path) -> tuple[list[str], np.ndarray, dict]:
        """Photos from a file or folder, prepared as in training; unreadable ones are counted."""
        if not path.exists():
            raise DataError(f"'{path}' does not exist; expected a photo or a folder of photos")
        paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        names, arrays, skipped = [], [], {}
        for p in paths:
            try:
                arrays.append(imgs.read_image(p, self.config.image_size, self.data.max_pixels))
                names.append(str(p))
            except ValueError as exc:
                skipped[str(p)] = str(exc)
        if not arrays:
            raise DataError(f"no readable photo in '{path}' ({len(skipped)} skipped); expected JPEG, PNG, GIF, "
                            "BMP or WebP files")
        return names, np.stack(arrays).astype("float32"), skipped

    def _classify_files(self, core, path: Path, out_dir: Path, heat: bool) -> dict:
        names, x, skipped = self.prepare_files(path)
        probabilities = np.asarray(core.predict(x, verbose=0))
        predictions = [{"file": n, "class": self.classes[int(p.argmax())], "probability": round(float(p.max()), 4),
                        "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)}}
                       for n, p in zip(names, probabilities)]
        shown = slice(0, self.config.gallery)
        titles = [f"{Path(p['file']).name[:18]}: {p['class']} {p['probability']:.2f}" for p in predictions[shown]]
        insight.plot_gallery(x[shown].astype("uint8"), titles, out_dir / "what_it_sees.png",
                             insight.grad_cam(core, x[shown]) if heat else None)
        write_atomic(out_dir / "predictions.json", json.dumps(predictions, indent=1))
        return {"predictions": predictions, "skipped": skipped, "files": ["predictions.json", "what_it_sees.png"]}

    # -- export ------------------------------------------------------------------------------

    def export_model(self, model):
        return model.get_layer("classifier")

    def example_inputs(self) -> np.ndarray:
        found, parts = self.photos
        return found.images[parts["validation"][:32]].astype("float32")

    def representative_data(self):
        """Training images, for int8 calibration."""
        found, parts = self.photos
        train = parts["train"]
        for start in range(0, min(len(train), 200), 20):
            yield found.images[train[start:start + 20]].astype("float32")
        # a black and a white image: the input's range is then all of 0..255, and a uint8_io
        # file takes pixels as they are (scale 1, zero point 0)
        size = self.config.image_size
        yield np.stack([np.zeros((size, size, 3), "float32"), np.full((size, size, 3), 255.0, "float32")])

    def export_check(self, reference: dict, exported: dict, quantized: bool) -> dict:
        """The exported model must give Keras' label for every golden image (a quantized one
        for all but ``export_spec.margin`` of them)."""
        keras_labels = np.asarray(reference["probabilities"]).argmax(axis=1)
        labels = np.asarray(exported["probabilities"]).reshape(len(keras_labels), -1).argmax(axis=1)
        agreement = float(np.mean(labels == keras_labels))
        record: dict = {"labels_agree": agreement, "images": int(len(labels))}
        if agreement < (1.0 - self.export_spec.margin if quantized else 1.0):
            record["error"] = (f"the exported model gives Keras' label for {agreement:.0%} of {len(labels)} golden "
                               f"images; expected {'nearly ' if quantized else ''}all")
        return record

    def export_metric(self, predict, data: Splits) -> float:
        x, y = data.validation
        return float(np.mean(np.asarray(predict(x)).argmax(axis=1) == y))

    def deploy_info(self) -> DeployInfo:
        size = self.config.image_size
        return DeployInfo(
            description={"image": f"(1, {size}, {size}, 3) float32 RGB in 0..255",
                         "probabilities": "one probability per label"},
            labels=self.classes,
            backend="wasm",  # measured here: 7-11 ms a photo, against 100+ ms on webgl without a GPU
            settings={"positive_label": self.classes[self.positive],
                      "preprocessing": {"size": size, "orientation": "EXIF orientation applied",
                                        "background": "transparent pixels composited over white",
                                        "crop": "centre square", "resize": "bilinear, antialiased",
                                        "scale": "none: RGB 0..255 (the model scales)"}},
        )


def positive_index(name: str, classes: list[str]) -> int:
    """The index of ``experiment.positive_class`` (empty: the first class) among ``classes``."""
    name = name or classes[0]
    if name not in classes:
        raise DataError(f"experiment.positive_class={name} is not a class; expected one of: {', '.join(classes)}")
    return classes.index(name)
