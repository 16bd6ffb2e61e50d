"""The classifier experiment: image folders (and the LFW subset), both models, what the
network sees, the command line and its bad input."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import only_run_dir, read_run, run_cli, run_readme_python
from tinkerflow.core import DataError
from tinkerflow.plugins.classifier import images as imgs
from tinkerflow.plugins.classifier import insight


def photo(kind: str, seed: int, size=(120, 90)) -> Image.Image:
    """A 'mila' photo is a warm blob on a light background; anything else is cool stripes."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "mila":
        cx, cy, r = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h, rng.uniform(0.2, 0.3) * min(w, h)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2) < r ** 2
        pixels = np.full((h, w, 3), 220.0)
        pixels[blob] = [200, 90, 40]
    else:
        period = rng.uniform(8, 16)
        stripes = (np.sin((xx + yy * rng.uniform(-0.5, 0.5)) / period * 2 * np.pi) > 0)[..., None]
        pixels = np.where(stripes, [40, 70, 180], [90, 160, 200]).astype("float64")
    pixels += rng.normal(0, 12, pixels.shape)
    return Image.fromarray(np.uint8(np.clip(pixels, 0, 255)))


def make_photos(folder: Path, per_class: dict[str, int], start: int = 0) -> Path:
    for name, count in per_class.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            photo(name if name == "mila" else "other", start + i + (1000 if name != "mila" else 0)).save(
                folder / name / f"{name}_{i:03d}.jpg", quality=92)
    return folder


def huge_png(path: Path, width: int, height: int) -> None:
    """A valid PNG header claiming a huge size (no pixel data needed to be refused)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")


# -- images ------------------------------------------------------------------------------------

def test_prepare_applies_exif_orientation_transparency_and_centre_crop(tmp_path):
    wide = np.zeros((40, 80, 3), "uint8")
    wide[:, 20:60] = [255, 0, 0]                       # the centre square is red, the sides black
    prepared = imgs.prepare(Image.fromarray(wide), 16)
    assert prepared.shape == (16, 16, 3) and np.all(prepared[:, :, 0] > 240) and np.all(prepared[:, :, 1] < 10)

    tall = np.zeros((60, 30, 3), "uint8")
    tall[:30] = [0, 255, 0]                            # the top half green: after a 90° turn it is one side
    exif = Image.Exif()
    exif[0x0112] = 6                                   # "rotate 90° clockwise to view"
    Image.fromarray(tall).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    upright = imgs.read_image(tmp_path / "turned.jpg", 30, 10**6)
    assert upright[:, -5:, 1].mean() > 200 and upright[:, :5, 1].mean() < 60, "EXIF orientation was applied"

    rgba = np.zeros((20, 20, 4), "uint8")              # fully transparent: white, not black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    assert imgs.read_image(tmp_path / "clear.png", 8, 10**6).min() == 255
    Image.fromarray(np.full((20, 20), 50, "uint8"), "L").save(tmp_path / "grey.png")
    grey = imgs.read_image(tmp_path / "grey.png", 8, 10**6)
    assert grey.shape == (8, 8, 3) and np.all(grey == 50)


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    make_photos(tmp_path, {"mila": 3, "not_mila": 3})
    (tmp_path / "mila" / "notes.txt").write_text("not a photo")
    good = (tmp_path / "mila" / "mila_000.jpg").read_bytes()
    (tmp_path / "mila" / "broken.jpg").write_bytes(good[: len(good) // 3])
    huge_png(tmp_path / "not_mila" / "huge.png", 30000, 30000)
    found = imgs.read_folder(tmp_path, 16, 50_000_000)
    assert found.classes == ["mila", "not_mila"] and found.counts() == {"mila": 3, "not_mila": 3}
    assert dict(found.skipped) == {"not an image": 1, "corrupt": 1, "too large": 1}
    assert any("huge.png: too large" in e for e in found.skipped_examples)


@pytest.mark.parametrize("layout, expected", [
    ({}, "has no class folders; expected two or more subfolders"),
    ({"mila": 2}, r"has one class folder \(mila\); expected two or more"),
    ({"mila": 2, "not_mila": 0}, r"not_mila .* hold no readable image \(1 files skipped: 1 not an image\)"),
])
def test_bad_folders_are_one_line(tmp_path, layout, expected):
    make_photos(tmp_path, {k: v for k, v in layout.items() if v})
    for name, count in layout.items():
        if not count:
            (tmp_path / name).mkdir()
            (tmp_path / name / "readme.md").write_text("# not a photo")
    with pytest.raises(DataError, match=expected) as caught:
        imgs.read_folder(tmp_path, 16, 10**6)
    assert "\n" not in str(caught.value)


def test_lfw_subset_is_the_offline_default():
    faces = imgs.read_lfw(32)
    assert faces.images.shape == (200, 32, 32, 3) and faces.classes == ["face", "not_face"]
    assert faces.counts() == {"face": 100, "not_face": 100}
    assert np.all(faces.images[..., 0] == faces.images[..., 2]), "grey levels in all three channels"


def test_balance_and_stratified_split():
    labels = np.array([0] * 30 + [1] * 10, "int32")
    found = imgs.ImageSet(np.zeros((40, 2, 2, 3), "uint8"), labels, ["a", "b"], [str(i) for i in range(40)])
    assert imgs.balance(found, 0).counts() == {"a": 10, "b": 10}
    validation, test, train = imgs.stratified_split(labels, (0.2, 0.1), 0)
    assert [int(np.sum(labels[validation] == c)) for c in (0, 1)] == [6, 2]
    assert [int(np.sum(labels[test] == c)) for c in (0, 1)] == [3, 1]
    assert len(set(validation) | set(test) | set(train)) == 40


# -- what it sees ---------------------------------------------------------------------------------

def test_confusion_precision_recall_and_confident_mistakes():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array([[.9, .1], [.6, .4], [.3, .7], [.2, .8], [.95, .05], [.55, .45]])
    matrix = insight.confusion(labels, probabilities.argmax(1), 2)
    assert matrix.tolist() == [[2, 1], [2, 1]]
    stats = insight.precision_recall(matrix, ["dog", "other"])
    assert stats["dog"] == {"precision": 0.5, "recall": 2 / 3, "images": 3}
    assert insight.confident_mistakes(labels, probabilities, 0, 5) == {"false_positives": [4, 5],
                                                                        "false_negatives": [2]}


def test_grad_cam_points_at_the_evidence():
    import keras

    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax",
                                 kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]))(x)
    model = keras.Model(inputs, outputs)
    image = np.zeros((1, 8, 8, 3), "float32")
    image[0, :3, 5:] = 1.0                             # the only evidence sits top right
    heat = insight.grad_cam(model, image)
    assert heat.shape == (1, 8, 8) and heat.max() == pytest.approx(1.0)
    assert heat[0, :3, 5:].mean() > 0.8 and heat[0, 5:, :3].mean() < 0.1


# -- the command line ------------------------------------------------------------------------------

#: val_loss, not the default val_accuracy: ten validation photos are all right long before the
#: model is sure of them, and early stopping would keep that half-trained epoch
SMALL = ["experiment=classifier", "experiment.image_size=32", "model.filters=[8,8,16]", "model.dense=16",
         "trainer.epochs=30", "trainer.batch_size=8", "trainer.checkpoint_seconds=0", "experiment.gallery=4",
         "trainer.early_stopping.monitor=val_loss"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("photos"), {"mila": 24, "not_mila": 30})


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    (photos / "not_mila" / "notes.txt").write_text("skipped, counted")
    result = run_cli("train", *SMALL, f"data.path={photos}", "data.balance=true", cwd=root)
    (photos / "not_mila" / "notes.txt").unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(root / "runs", "classifier")


def test_train_on_a_photo_folder_reports_what_it_sees(trained):
    info = read_run(trained)
    assert info["data"]["classes"] == {"mila": 24, "not_mila": 24}, "balanced as in the post"
    assert info["data"]["skipped"] == {"not an image": 1}
    assert info["data"]["split"] == {"train": 34, "validation": 10, "test": 4}
    assert info["metrics"]["best_val_accuracy"] >= 0.9, "the two kinds of photo are easy to tell apart"
    samples = info["samples"]
    assert samples["positive_class"] == "mila" and sum(map(sum, samples["confusion"]["matrix"])) == 10
    assert set(samples["per_class"]) == {"mila", "not_mila"} and samples["heat_maps"] == "Grad-CAM"
    for name in ("confusion.png", "what_it_sees.png"):
        assert Image.open(trained / "samples" / name).size[0] > 200
    assert json.loads((trained / "learned.json").read_text()) == {"classes": ["mila", "not_mila"]}


def test_sample_classifies_new_photos(trained, tmp_path):
    make_photos(tmp_path / "new", {"mila": 2, "not_mila": 2}, start=500)
    (tmp_path / "new" / "mila" / "junk.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = run_cli("sample", str(trained), "--images", str(tmp_path / "new"), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads((out / "predictions.json").read_text())
    assert [Path(p["file"]).parent.name for p in predictions] == ["mila", "mila", "not_mila", "not_mila"]
    assert [p["class"] for p in predictions] == ["mila", "mila", "not_mila", "not_mila"]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert (out / "what_it_sees.png").is_file()
    missing = run_cli("sample", str(trained), "--images", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist; expected a photo or a folder of photos" in missing.stderr


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    result = run_cli("export", str(trained), "--format", "tflite", "tfjs", "--quantize", "float32", "int8", "uint8_io",
                     cwd=tmp_path_factory.mktemp("export"))
    assert result.returncode == 0, result.stderr[-3000:]
    return trained


def test_export_float_and_int8_with_labels(exported):
    formats = json.loads((exported / "export.json").read_text())["formats"]
    for fmt, variant in (("tflite", "float32"), ("tflite", "int8"), ("tflite", "uint8_io"), ("tfjs", "float32")):
        record = formats[fmt]["variants"][variant]
        assert record["status"] == "passed", record
        manifest = json.loads((exported / "export" / fmt / variant / "manifest.json").read_text())
        assert manifest["labels"] == ["mila", "not_mila"] and manifest["preprocessing"]["size"] == 32
        assert [i["name"] for i in manifest["inputs"]] == ["image"]
        assert record["check"]["labels_agree"] >= 0.97 and record["check"]["images"] == 10, "all validation images"
    int8 = formats["tflite"]["variants"]["int8"]
    assert int8["quantized"] and int8["metric"]["keras"] - int8["metric"]["exported"] <= 0.03
    float32 = formats["tflite"]["variants"]["float32"]["files"][0]["bytes"]
    assert formats["tflite"]["variants"]["int8"]["files"][0]["bytes"] < float32 / 2


def test_uint8_io_variant_takes_and_gives_bytes(exported):
    record = json.loads((exported / "export.json").read_text())["formats"]["tflite"]["variants"]["uint8_io"]
    manifest = json.loads((exported / "export" / "tflite" / "uint8_io" / "manifest.json").read_text())
    image, scores = manifest["inputs"][0], manifest["outputs"][0]
    assert image["dtype"] == scores["dtype"] == "uint8" and image["shape"] == [1, 32, 32, 3]
    assert image["quantization"] == {"scale": 1.0, "zero_point": 0}, "pixel values go in as they are"
    assert abs(scores["quantization"]["scale"] - 1 / 256) < 1e-6, "scores in 0..1 come out in 256 steps"
    assert record["page"] == {"runtime": "litertjs", "usable": True}
    assert record["metric"]["keras"] - record["metric"]["exported"] <= 0.03
    from tinkerflow.exporters import runtime

    model = runtime.TFLiteModel(exported / "export" / "tflite" / "uint8_io" / "model.tflite", dequantize=False)
    pixels = np.asarray(Image.new("RGB", (32, 32), (200, 30, 30)), dtype="uint8")[None]
    raw = model.predict(pixels)
    assert raw.dtype == np.uint8 and 250 <= int(raw.sum()) <= 260, "two uint8 scores that add up to 1"


def test_every_tflite_file_runs_as_it_is_in_mediapipe(exported):
    formats = json.loads((exported / "export.json").read_text())["formats"]
    for variant in ("float32", "int8", "uint8_io"):
        consumer = formats["tflite"]["variants"][variant]["consumer"]
        assert consumer["framework"] == "mediapipe" and consumer["checked"], consumer
        assert consumer["images"] == 10 and consumer["agrees_with_litert"] == 1.0, consumer
        assert consumer["max_score_diff_litert"] < 1e-6, "the same file on the same pixels"
        assert consumer["agrees_with_keras"] >= (1.0 if variant == "float32" else 0.9)
    assert "consumer" not in formats["tfjs"]["variants"]["float32"]


def test_the_tflite_metadata_has_normalization_labels_and_the_run(exported):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    from tensorflow.lite.python import schema_py_generated as tflite

    from tinkerflow.exporters import runtime
    from tinkerflow.exporters.tflite_metadata import packed_files

    path = exported / "export" / "tflite" / "float32" / "model.tflite"
    data = path.read_bytes()
    model = tflite.Model.GetRootAs(data, 0)
    entries = {model.Metadata(k).Name(): model.Metadata(k).Buffer() for k in range(model.MetadataLength())}
    buffer = model.Buffers(entries[b"TFLITE_METADATA"]).DataAsNumpy().tobytes()
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    meta = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAs(buffer, 0))
    assert meta.name.decode() == f"classifier ({exported.name})" and meta.version.decode() == exported.name
    assert b"Is it my dog?" in meta.description and meta.minParserVersion == b"1.0.0"
    (subgraph,) = meta.subgraphMetadata
    (image,), (scores,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert image.name == b"image" and b"RGB in 0..255" in image.description
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    normalization = image.processUnits[0].options
    assert list(normalization.mean) == [0.0] and list(normalization.std) == [1.0], "the model scales 0..255 itself"
    assert scores.associatedFiles[0].name == b"labels.txt"
    assert scores.associatedFiles[0].type == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    assert packed_files(data) == {"labels.txt": b"mila\nnot_mila\n"}
    assert runtime.TFLiteModel(path).signatures == ["serving_default"], "the metadata kept the signature"


def test_grey_and_rgba_photos_reach_mediapipe_prepared(exported, tmp_path):
    from tinkerflow.core.errors import TinkerflowError
    from tinkerflow.exporters import mediapipe_check, runtime

    Image.new("L", (40, 50), 90).save(tmp_path / "grey.png")
    Image.new("RGBA", (50, 40), (200, 20, 20, 128)).save(tmp_path / "rgba.png")
    Image.new("P", (30, 30), 3).save(tmp_path / "palette.png")
    names = ("grey.png", "rgba.png", "palette.png")
    batch = np.stack([imgs.prepare(Image.open(tmp_path / name), 32) for name in names])
    for variant in ("float32", "uint8_io"):
        path = exported / "export" / "tflite" / variant / "model.tflite"
        mediapipe_scores = mediapipe_check.classify(path, batch, ["mila", "not_mila"])
        litert_scores = runtime.TFLiteModel(path).predict(batch.astype("float32"))
        np.testing.assert_allclose(mediapipe_scores, litert_scores, atol=1e-6)
    for raw, shape in ((np.zeros((1, 32, 32), "uint8"), "(1, 32, 32)"),
                       (np.zeros((1, 32, 32, 4), "uint8"), "(1, 32, 32, 4)")):
        with pytest.raises(TinkerflowError, match=re.escape(f"images of shape {shape} cannot go to MediaPipe")):
            mediapipe_check.classify(path, raw, ["mila", "not_mila"])


def test_the_deploy_bundle_runs_as_its_readme_says(exported):
    bundle = exported / "export" / "deploy"
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md", "float32.tflite", "golden.json", "int8.tflite", "labels.txt", "model.json", "uint8_io.tflite"]
    for variant in ("float32", "int8", "uint8_io"):
        exported_file = exported / "export" / "tflite" / variant / "model.tflite"
        assert (bundle / f"{variant}.tflite").read_bytes() == exported_file.read_bytes()
    assert (bundle / "labels.txt").read_text() == "mila\nnot_mila\n"
    model = json.loads((bundle / "model.json").read_text())
    assert model["experiment"] == "classifier" and model["preprocessing"]["crop"] == "centre square"
    uint8 = model["variants"]["uint8_io"]
    assert uint8["signature"] == "serving_default" and uint8["input_positions"] == ["image"]
    assert uint8["inputs"][0]["quantization"] == {"scale": 1.0, "zero_point": 0}
    golden = json.loads((bundle / "golden.json").read_text())["variants"]
    assert golden["uint8_io"]["calls"][0]["inputs"]["image"]["dtype"] == "uint8"
    assert golden["uint8_io"]["tolerance"] == 1.0
    assert golden["float32"]["calls"][0]["inputs"]["image"]["shape"] == [1, 32, 32, 3]
    readme = (bundle / "README.md").read_text()
    for snippet in ('CompiledModel.create(context.assets, "float32.tflite"', 'createInputBuffer("image", '
                                                                             '"serving_default")',
                    "interpreter.copy(imageData, toInputAt: 0)", "ImageClassifier.createFromOptions"):
        assert snippet in readme
    litert, mediapipe = run_readme_python(bundle)
    assert litert.returncode == 0, litert.stderr[-2000:]
    assert litert.stdout.splitlines() == [f"{v}.tflite: golden.json reproduced (3 calls)"
                                          for v in ("float32", "int8", "uint8_io")]
    assert mediapipe.returncode == 0 and mediapipe.stdout.startswith("MediaPipe: "), mediapipe.stderr[-2000:]


def test_a_label_a_labels_file_cannot_carry_is_refused_at_export(exported, photos, tmp_path):
    import shutil

    copy = tmp_path / "runs" / "classifier" / "copy"
    shutil.copytree(exported, copy, ignore=shutil.ignore_patterns("export", "export.json"))
    for label, expected in (("mi\nla", "has a line break; expected one line per label"),
                            ("m" * 129, "has 129 characters; expected at most 128")):
        folder = tmp_path / f"photos-{len(label)}"
        shutil.copytree(photos / "mila", folder / label)
        shutil.copytree(photos / "not_mila", folder / "not_mila")
        config = (exported / ".hydra" / "config.yaml").read_text()
        (copy / ".hydra" / "config.yaml").write_text(config.replace(str(photos), str(folder)))
        (copy / "learned.json").write_text(json.dumps({"classes": [label, "not_mila"]}))
        result = run_cli("export", str(copy), "--format", "tflite", "--quantize", "float32", cwd=tmp_path)
        assert result.returncode != 0 and expected in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and not (copy / "export" / "tflite" / "float32").exists()


def test_mobilenet_v2_from_scratch_with_fine_tuning(photos, tmp_path):
    result = run_cli("train", "experiment=classifier", f"data.path={photos}", "model=mobilenet_v2",
                     "model.weights=none", "model.alpha=0.35", "experiment.image_size=32", "model.head_units=8",
                     "model.fine_tune_layers=10", "model.fine_tune_epochs=1", "trainer.epochs=1",
                     "trainer.checkpoint_seconds=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    info = read_run(only_run_dir(tmp_path / "runs", "classifier"))
    assert info["config"]["model"]["name"] == "mobilenet_v2"
    assert info["epochs_run"] == 2, "one epoch with the base frozen, one fine-tuning its top layers"


@pytest.mark.parametrize("overrides, expected", [
    (["data.path=EMPTY"], "has no class folders; expected two or more subfolders"),
    (["experiment.positive_class=cat"],
     "experiment.positive_class=cat is not a class; expected one of: mila, not_mila"),
    (["model=resnet"], "model=resnet is not a classifier model option; expected one of: mobilenet_v2, simple"),
    (["model=mobilenet_v2", "model.weights=WRONG"], "does not fit MobileNetV2(alpha=0.35, include_top=False)"),
    (["model=mobilenet_v2", "model.weights=/no/such.h5"], "is neither imagenet, none nor an existing file"),
    (["model=mobilenet_v2", "model.alpha=0.6"], "model.alpha=0.6"),
])
def test_bad_classifier_input_is_one_line(photos, tmp_path, overrides, expected):
    import keras

    (tmp_path / "empty").mkdir()
    wrong = tmp_path / "wrong.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(wrong)
    overrides = [o.replace("EMPTY", str(tmp_path / "empty")).replace("WRONG", str(wrong)) for o in overrides]
    result = run_cli("train", "experiment=classifier", f"data.path={photos}", "experiment.image_size=32",
                     "model.alpha=0.35" if "model=mobilenet_v2" in overrides else "trainer.epochs=1", *overrides,
                     "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_imagenet_weights_without_internet_is_one_line(monkeypatch):
    from keras.src.applications import mobilenet_v2

    from tinkerflow.plugins.classifier.models import MobileNetV2Model, mobilenet_base

    monkeypatch.setattr(mobilenet_v2, "BASE_WEIGHT_PATH", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")
    with pytest.raises(DataError, match="could not download the ImageNet weights of MobileNetV2"):
        mobilenet_base(MobileNetV2Model(alpha=0.35), 96)
