"""The dcgan experiment: its data sets (real ones included), the training film, conditional
sampling, the export of the generator, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import only_run_dir, read_run, run_cli
from tinkerflow.core import DataError
from tinkerflow.plugins.dcgan import datasets as sets
from tinkerflow.plugins.dcgan.architecture import depth_for


def test_ellipses_are_the_posts_data_sets_and_reproducible():
    white = sets.ellipses(sets.EllipsesData(style="opaque_white", count=20, seed=3), 16)
    assert white.images.shape == (20, 16, 16, 3) and white.conditions is None
    def white_ellipses(seed):
        return sets.ellipses(sets.EllipsesData(style="opaque_white", count=20, seed=seed), 16).images

    assert np.array_equal(white.images, white_ellipses(3))
    assert not np.array_equal(white.images, white_ellipses(4))
    grey = white.images.std(axis=-1).max()
    assert grey < 1 and white.images[:, 0, 0].max() == 0, "white on black, nothing coloured"
    colour = sets.ellipses(sets.EllipsesData(style="opaque_color", count=40, background="#102030"), 16)
    assert colour.conditions.shape == (40, 8) and np.all(colour.conditions.sum(axis=1) == 1)
    assert colour.condition_names[0] == "colour=red" and colour.groups["colour"][-1] == "pink"
    assert tuple(colour.images[0, 0, 0]) == (16, 32, 48), "the background colour asked for"
    red = colour.images[colour.conditions[:, 0] == 1]
    assert red.reshape(-1, 3)[:, 0].max() > 200, "red ellipses are red"
    outline = sets.ellipses(sets.EllipsesData(style="outline", count=5), 32)
    assert outline.images[:, 0, 0].min() == 255, "outlines on white"
    with pytest.raises(DataError, match="is not a colour"):
        sets.ellipses(sets.EllipsesData(background="mauve"), 8)


def test_real_offline_sets_emoji_and_digits():
    faces = sets.emoji(sets.EmojiData(categories=["Smileys & Emotion"], skin_tones=False), 16)
    assert len(faces.images) > 150 and faces.images.shape[1:] == (16, 16, 3)
    assert faces.condition_names == ["category=Smileys & Emotion"]
    assert np.median(faces.images[:, 0, 0]) == 255, "transparent corners become white"
    both = sets.emoji(sets.EmojiData(), 8)
    assert both.info["per_category"]["People & Body"] > 1000, "skin-tone variants included"
    with pytest.raises(DataError, match="data.categories has 'Faces'; expected some of: .*Smileys & Emotion"):
        sets.emoji(sets.EmojiData(categories=["Faces"]), 8)
    digits = sets.digits(sets.DigitsData(), 32)
    assert digits.images.shape == (5000, 32, 32, 3) and digits.conditions.shape == (5000, 10)
    sevens = sets.digits(sets.DigitsData(digits=[7]), 16)
    assert 400 < len(sevens.images) < 600 and sevens.condition_names == ["digit=7"]


def cartoon_folder(folder: Path, n: int = 6, sizes=((24, 24),)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        size = sizes[i % len(sizes)]
        Image.new("RGBA", size, (200, 50 * (i % 3), 30, 255)).save(folder / f"cs{i}.png")
        (folder / f"cs{i}.csv").write_text(f'"hair_color", {i % 3}, 10\n"eye_color", {i % 2}, 5\n')
    return folder


def test_folder_with_cartoon_set_attributes(tmp_path):
    folder = cartoon_folder(tmp_path / "cartoons", sizes=((24, 24), (30, 20)))
    found = sets.folder(sets.FolderData(path=str(folder), attributes=["hair_color"]), 16, conditional=True)
    assert found.images.shape == (6, 16, 16, 3) and found.info["sizes_found"] == 2
    assert found.groups == {"hair_color": [str(v) for v in range(10)]}
    assert found.conditions.shape == (6, 10) and found.conditions[4].argmax() == 1
    with pytest.raises(DataError, match=r"have the sizes 24x24 \(e.g. cs0.png\), 30x20 \(e.g. cs1.png\); expected all "
                                        r"16x16"):
        sets.folder(sets.FolderData(path=str(folder), resize=False), 16, conditional=False)
    (folder / "cs3.csv").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) have no attribute file beside them \(e.g. cs3.png"):
        sets.folder(sets.FolderData(path=str(folder)), 16, conditional=True)
    (folder / "cs3.csv").write_text('"hair_color", 1, 10\n')
    with pytest.raises(DataError, match="cs3.csv has no attribute 'eye_color'"):
        sets.folder(sets.FolderData(path=str(folder), attributes=["hair_color", "eye_color"]), 16, conditional=True)


def test_image_sizes_the_architecture_can_produce():
    assert [depth_for(s) for s in (8, 16, 32, 64)] == [1, 2, 3, 4]
    with pytest.raises(DataError, match="experiment.image_size=28 cannot be produced .* expected one of: 8, 16, 32"):
        depth_for(28)


# -- the command line ------------------------------------------------------------------------------

TINY = ["experiment=dcgan", "data=ellipses", "data.style=opaque_color", "data.count=128", "experiment.image_size=16",
        "model.width=8", "model.latent_dim=8", "model.conditional=true", "trainer.batch_size=32", "trainer.epochs=3",
        "trainer.checkpoint_seconds=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcgan")
    result = run_cli("train", *TINY, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(root / "runs", "dcgan")


def test_training_film_and_curves(trained):
    info = read_run(trained)
    frames = sorted((trained / "samples" / "film").glob("epoch_*.png"))
    assert [f.name for f in frames] == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    assert Image.open(frames[0]).size == (4 * 16 + 5 * 2, 4 * 16 + 5 * 2), "a 4x4 grid"
    gif = Image.open(trained / "samples" / "training.gif")
    assert gif.n_frames == 3
    diversity = info["samples"]["diversity"]
    assert len(diversity) == 3 and info["metrics"]["final_diversity"] == diversity[-1]
    assert (trained / "samples" / "curves.png").is_file()
    assert json.loads((trained / "learned.json").read_text())["columns"][:2] == ["colour=red", "colour=orange"]


def test_conditional_sampling(trained, tmp_path):
    result = run_cli("sample", str(trained), "--n", "8", "--seed", "3", "--condition", "colour=blue",
                     "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "samples_n8_seed3.png").size == (4 * 16 + 5 * 2, 2 * 16 + 3 * 2)
    bad = run_cli("sample", str(trained), "--condition", "colour=mauve", cwd=tmp_path)
    assert bad.returncode == 2 and "--condition colour=mauve is not a condition of this run" in bad.stderr


def test_export_of_the_generator(trained, tmp_path):
    result = run_cli("export", str(trained), "--format", "tflite", "tfjs", "--quantize", "float32", "int8", "uint8_io",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    formats = json.loads((trained / "export.json").read_text())["formats"]
    manifest = json.loads((trained / "export" / "tfjs" / "float32" / "manifest.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["latent", "condition"] and manifest["latent_dim"] == 8
    assert manifest["outputs"][0]["shape"] == [None, 16, 16, 3]
    assert manifest["conditions"]["groups"]["colour"][0] == "red"
    assert formats["tflite"]["variants"]["float32"]["parity"]["max_abs_diff"] < 0.01, "pixels within 1/100 level"
    int8 = formats["tflite"]["variants"]["int8"]
    assert int8["status"] == "passed" and int8["metric"]["exported"] <= 8.0
    uint8 = formats["tflite"]["variants"]["uint8_io"]
    assert uint8["status"] == "passed" and uint8["metric"]["exported"] <= 8.0 and uint8["page"]["usable"]
    bytes_io = json.loads((trained / "export" / "tflite" / "uint8_io" / "manifest.json").read_text())
    assert [t["dtype"] for t in bytes_io["inputs"] + bytes_io["outputs"]] == ["uint8"] * 3
    for tensor in bytes_io["inputs"] + bytes_io["outputs"]:
        assert tensor["quantization"]["scale"] > 0 and 0 <= tensor["quantization"]["zero_point"] <= 255, tensor
    assert "consumer" not in uint8, "MediaPipe checks image classifiers only"


@pytest.mark.parametrize("overrides, expected", [
    (["experiment.image_size=24"], "experiment.image_size=24 cannot be produced by doubling 4x4 feature maps"),
    (["data.count=10"], "10 images are fewer than one batch (trainer.batch_size=32)"),
    (["data.style=opaque_white", "model.conditional=true"], "has nothing to condition on"),
    (["data=folder", "data.path=/nonexistent"], "data.path='/nonexistent' is not a folder"),
    (["data=nope"], "data=nope is not a dcgan data option; expected one of: digits, ellipses, emoji, folder"),
])
def test_bad_dcgan_input_is_one_line(tmp_path, overrides, expected):
    result = run_cli("train", "experiment=dcgan", "trainer.batch_size=32", "data.count=64", *overrides,
                     "trainer.epochs=1", cwd=tmp_path)
    if "data=folder" in overrides or "data=nope" in overrides:
        result = run_cli("train", "experiment=dcgan", *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_the_mismatch_term_shows_real_images_with_other_conditions_as_fakes():
    import keras

    from tinkerflow.plugins.dcgan.model import DCGAN, GanModel, build_discriminator, build_generator

    m = GanModel(latent_dim=4, width=4, conditional=True, dropout=0.0)
    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(m, 8, 3), build_discriminator(m, 8, 3)
    real = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    condition = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    wrong = discriminator([real, np.roll(condition, 1, axis=0)], training=True)
    expected = float(keras.losses.BinaryCrossentropy(from_logits=True)(np.zeros((4, 1)), wrong))
    losses = {}
    for weight in (0.0, 1.0):
        gan = DCGAN(generator, discriminator, 4, 0.0, 0.0, seed=0, mismatch=weight)
        gan.compile(learning_rate=0.0)  # the same weights for both steps
        losses[weight] = float(gan.train_step((keras.ops.convert_to_tensor(real),
                                               keras.ops.convert_to_tensor(condition)))["d_loss"])
    assert losses[1.0] - losses[0.0] == pytest.approx(expected, rel=1e-4)


def test_the_auxiliary_task_scores_both_networks_on_naming_the_condition():
    import keras

    from tinkerflow.plugins.dcgan.model import DCGAN, GanModel, build_discriminator, build_generator

    m = GanModel(latent_dim=4, width=4, conditional=True, dropout=0.0, auxiliary=1.0)
    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(m, 8, 3), build_discriminator(m, 8, 3)
    assert [o.shape[-1] for o in discriminator.outputs] == [1, 3], "realness and one naming logit per entry"
    real = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32"))
    condition = keras.ops.convert_to_tensor(np.array([[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], "float32"))
    present = keras.ops.cast(condition > 0, "float32")
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    z = keras.random.normal((4, 4), seed=keras.random.SeedGenerator(0))  # the step's first draw
    fake = generator([z, condition], training=True)
    expected = {"d_loss": float(bce(present, discriminator([real, condition], training=True)[1])),
                "g_loss": float(bce(present, discriminator([fake, condition], training=True)[1]))}
    losses = {}
    for weight in (0.0, 2.0):
        gan = DCGAN(generator, discriminator, 4, 0.0, 0.0, seed=0, auxiliary=weight)
        gan.compile(learning_rate=0.0)
        step = gan.train_step((real, condition))
        losses[weight] = {k: float(step[k]) for k in expected}
    for key, value in expected.items():
        assert losses[2.0][key] - losses[0.0][key] == pytest.approx(2.0 * value, rel=1e-4), key


def test_modulation_brings_the_condition_into_every_upsampling_step():
    import keras

    from tinkerflow.plugins.dcgan.model import GanModel, build_generator

    z = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    conditions = np.eye(3, dtype="float32")[[0, 2]]
    for modulate in (False, True):
        keras.utils.set_random_seed(0)
        generator = build_generator(GanModel(latent_dim=4, width=4, conditional=True, modulate=modulate), 16, 3)
        steps = sorted(layer.name for layer in generator.layers if layer.name.endswith("_scale"))
        assert steps == (["up_1_scale"] if modulate else []), "16 px: one upsampling step before the image"
        # cut the condition out of the first layer: only modulation can still carry it
        kernel = generator.get_layer("project").kernel
        kernel.assign(keras.ops.concatenate([kernel[:4], keras.ops.zeros_like(kernel[4:])], axis=0))
        rng = np.random.default_rng(1)
        for layer in generator.layers:
            if layer.name.endswith(("_scale", "_shift")):  # they start at zero: the unmodulated painter
                layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype("float32"))
        images = keras.ops.convert_to_numpy(generator([np.stack([z[0], z[0]]), conditions], training=False))
        assert (np.abs(images[0] - images[1]).max() > 1e-3) == modulate


def test_the_projection_discriminator_adds_features_dot_projected_condition_to_realness():
    import keras

    from tinkerflow.plugins.dcgan.model import GanModel, build_discriminator

    keras.utils.set_random_seed(0)
    d = build_discriminator(GanModel(latent_dim=4, width=4, conditional=True, dropout=0.0, projection=True), 8, 3)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    condition = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    features = keras.ops.convert_to_numpy(keras.Model(d.inputs, d.get_layer("flatten").output)([images, condition]))
    real = d.get_layer("real")
    plain = features @ keras.ops.convert_to_numpy(real.kernel) + keras.ops.convert_to_numpy(real.bias)
    projected = condition @ keras.ops.convert_to_numpy(d.get_layer("condition_projection").kernel)
    expected = plain[:, 0] + (features * projected).sum(axis=1)
    logit = keras.ops.convert_to_numpy(d([images, condition]))[:, 0]
    np.testing.assert_allclose(logit, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected - plain[:, 0]).max() > 1e-3, "the condition moves the realness"


def test_spectral_normalisation_keeps_every_discriminator_weight_at_unit_gain():
    import keras

    from tinkerflow.plugins.dcgan.model import GanModel, build_discriminator

    keras.utils.set_random_seed(0)
    m = GanModel(latent_dim=4, width=4, conditional=True, projection=True, auxiliary=1.0, spectral_norm=True)
    d = build_discriminator(m, 8, 3)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    condition = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    wrapped = [layer for layer in d.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert {w.layer.name for w in wrapped} == {"condition_plane", "down_1", "real", "condition_projection",
                                               "condition_named"}

    def gains():
        return [np.linalg.svd(keras.ops.convert_to_numpy(w.layer.kernel).reshape(-1, w.layer.kernel.shape[-1]),
                              compute_uv=False)[0] for w in wrapped]

    assert max(abs(g - 1) for g in gains()) > 0.1, "initialised weights are not normalised"
    for _ in range(30):  # one power iteration per training call
        d([images, condition], training=True)
    np.testing.assert_allclose(gains(), 1.0, atol=0.02)
    plain = build_discriminator(GanModel(latent_dim=4, width=4, conditional=True), 8, 3)
    assert not any(isinstance(layer, keras.layers.SpectralNormalization) for layer in plain.layers)


def test_averaging_paints_with_the_moving_average_of_the_generators_weights(tmp_path):
    import keras

    from tinkerflow.plugins.dcgan.model import DCGAN, GanModel, build_discriminator, build_generator

    m = GanModel(latent_dim=4, width=4, conditional=True, average=0.5)
    keras.utils.set_random_seed(0)
    gan = DCGAN(build_generator(m, 8, 3), build_discriminator(m, 8, 3), 4, seed=0)
    gan.compile(learning_rate=1e-2, average=m.average)
    gan([np.zeros((1, 4), "float32"), np.eye(3, dtype="float32")[:1]])
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(
        [keras.ops.convert_to_numpy(v) for v in gan.generator.trainable_variables]))
    images = np.random.default_rng(0).uniform(-1, 1, (12, 8, 8, 3)).astype("float32")
    gan.fit(images, np.eye(3, dtype="float32")[np.arange(12) % 3], batch_size=4, epochs=1, shuffle=False,
            verbose=0, callbacks=[record])
    assert len(seen) == 3, "one record per step"
    expected = seen[0]
    for step in seen[1:]:  # the first step's weights start the average
        expected = [0.5 * a + 0.5 * w for a, w in zip(expected, step)]
    final = [keras.ops.convert_to_numpy(v) for v in gan.generator.trainable_variables]
    for got, want in zip(final, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert max(np.abs(g - w).max() for g, w in zip(final, seen[-1])) > 1e-4, "not the last step's weights"

    gan.save_weights(tmp_path / "checkpoint.weights.h5")  # as a resume checkpoint keeps it
    again = DCGAN(build_generator(m, 8, 3), build_discriminator(m, 8, 3), 4, seed=0)
    again.compile(learning_rate=1e-2, average=m.average)
    again([np.zeros((1, 4), "float32"), np.eye(3, dtype="float32")[:1]])
    again.build_optimizers()
    again.load_weights(tmp_path / "checkpoint.weights.h5")
    kept = [keras.ops.convert_to_numpy(v) for v in again.g_optimizer.variables]
    assert len(kept) > 2 * len(final) + 1, "the average is part of the optimizer's saved state"
    for got, want in zip(kept, [keras.ops.convert_to_numpy(v) for v in gan.g_optimizer.variables]):
        np.testing.assert_array_equal(got, want)


def test_resize_upsampling_doubles_by_nearest_neighbours():
    import keras

    from tinkerflow.plugins.dcgan.model import GanModel, build_generator

    keras.utils.set_random_seed(0)
    generator = build_generator(GanModel(latent_dim=4, width=4, conditional=True, upsample="resize"), 16, 3)
    kinds = [type(layer).__name__ for layer in generator.layers]
    assert "Conv2DTranspose" not in kinds and kinds.count("Resizing") == kinds.count("Conv2D") == 2
    maps = keras.Model(generator.inputs, [generator.get_layer("to_maps").output,
                                          generator.get_layer("up_1_resize").output, generator.output])
    z, c = np.random.default_rng(0).normal(size=(3, 4)).astype("float32"), np.eye(3, dtype="float32")[[0, 2, 1]]
    small, doubled, image = (keras.ops.convert_to_numpy(t) for t in maps([z, c]))
    np.testing.assert_array_equal(doubled, small.repeat(2, axis=1).repeat(2, axis=2))
    assert image.shape == (3, 16, 16, 3)


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_refine_paints_the_image_from_full_size_maps(upsample):
    import keras

    from tinkerflow.plugins.dcgan.model import GanModel, build_generator

    keras.utils.set_random_seed(0)
    m = GanModel(latent_dim=4, width=4, conditional=True, modulate=True, upsample=upsample, refine=5)
    generator = build_generator(m, 16, 3)
    last = generator.get_layer("up_2")
    image = generator.get_layer("image")
    assert last.output.shape[1:] == (16, 16, 5) and generator.get_layer("up_2_scale").units == 5
    assert type(image).__name__ == "Conv2D" and image.kernel_size == (3, 3) and image.input.shape[1:] == (16, 16, 5)
    z, c = np.random.default_rng(0).normal(size=(3, 4)).astype("float32"), np.eye(3, dtype="float32")
    painted = keras.ops.convert_to_numpy(generator([z, c]))
    assert painted.shape == (3, 16, 16, 3) and np.abs(painted).max() <= 1
    plain = build_generator(GanModel(latent_dim=4, width=4, conditional=True, upsample=upsample), 16, 3)
    assert plain.get_layer("image").output.shape[1:] == (16, 16, 3) and "up_2" not in [x.name for x in plain.layers]
