"""Exporters: round trips through the real runtimes (LiteRT, tfjs in Node) and the export pipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import re
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import read_run, run_cli, run_readme_python, snapshot, train_in_process
from tinkerflow.core.tf_quiet import import_keras

keras = import_keras()

from tinkerflow.core.exporter import ExportContext  # noqa: E402
from tinkerflow.exporters.recurrent import read_windows, state_width, unrolled_twin, window_stepper  # noqa: E402
from tinkerflow.exporters.savedmodel import tensor_names  # noqa: E402
from tinkerflow.exporters.tfjs import TFJSExporter  # noqa: E402
from tinkerflow.exporters.tflite import TFLiteExporter  # noqa: E402


# -- small models covering the layers the experiments use -----------------------------------

def dense_softmax():
    inputs = keras.Input((6,), name="features")
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs), np.random.default_rng(0).normal(size=(5, 6)).astype("float32")


def dense_tanh():
    """tanh after a Dense layer: grappler fuses it, and tfjs cannot run a fused tanh."""
    inputs = keras.Input((1,), name="x")
    x = keras.layers.Dense(8, activation="tanh")(inputs)
    x = keras.layers.Dense(8, activation="sigmoid")(x)
    outputs = keras.layers.Dense(1, name="y")(x)
    return keras.Model(inputs, outputs), np.linspace(-3, 3, 7, dtype="float32").reshape(-1, 1)


def conv_classifier():
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="label")(x)
    return keras.Model(inputs, outputs), np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype("float32")


def generator():
    inputs = keras.Input((8,), name="latent")
    x = keras.layers.Dense(4 * 4 * 8, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.LeakyReLU()(x)
    x = keras.layers.Reshape((4, 4, 8))(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="tanh", name="image")(x)
    return keras.Model(inputs, outputs), np.random.default_rng(2).normal(size=(4, 8)).astype("float32")


def lstm_language_model(unroll=True):
    inputs = keras.Input((14,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8)(inputs)
    x = keras.layers.LSTM(12)(x)
    outputs = keras.layers.Dense(50, activation="softmax", name="next_word")(x)
    model = keras.Model(inputs, outputs)
    tokens = np.random.default_rng(3).integers(0, 50, size=(3, 14)).astype("int32")
    return (unrolled_twin(model) if unroll else model), tokens


MODELS = {"dense_softmax": dense_softmax, "dense_tanh": dense_tanh, "conv_classifier": conv_classifier,
          "generator": generator, "lstm_unrolled": lstm_language_model}


def convert_and_run(exporter, model, x, tmp_path):
    """``x``: one input array, or a list of arrays in the model's input order."""
    inputs, outputs = tensor_names(model)
    context = ExportContext(model, None, inputs, outputs, tmp_path)
    bundle = tmp_path / f"{exporter.name}-bundle"
    bundle.mkdir()
    result = exporter.convert(context, "float32", bundle)
    loaded = exporter.load(bundle, result)
    try:
        return outputs, loaded.predict_named(dict(zip(inputs, x if isinstance(x, list) else [x])))
    finally:
        loaded.close()


@pytest.mark.parametrize("exporter_cls", [TFLiteExporter, TFJSExporter], ids=["tflite", "tfjs"])
@pytest.mark.parametrize("name", MODELS)
def test_round_trip_matches_keras(exporter_cls, name, tmp_path):
    model, x = MODELS[name]()
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    outputs, got = convert_and_run(exporter_cls(), model, x, tmp_path)
    assert list(got) == outputs, "output names survive the conversion"
    np.testing.assert_allclose(got[outputs[0]], expected, rtol=1e-4, atol=1e-5)


def test_fused_tanh_is_split_for_tfjs(tmp_path):
    model, x = dense_tanh()
    outputs, got = convert_and_run(TFJSExporter(), model, x, tmp_path)
    import base64

    nodes = json.loads((tmp_path / "tfjs-bundle" / "model.json").read_text())["modelTopology"]["node"]
    assert "Tanh" in [node["op"] for node in nodes]
    for node in nodes:
        fused = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
        assert b"Tanh" not in [base64.b64decode(f) for f in fused], node["name"]


def test_unfusing_rewrites_a_fused_tanh(tmp_path):
    from tinkerflow.exporters.tfjs_graph import unfuse_unsupported_activations

    def b64(text):
        import base64

        return base64.b64encode(text.encode()).decode()

    model = {"modelTopology": {"node": [
        {"name": "x", "op": "Placeholder"},
        {"name": "dense/Tanh", "op": "_FusedMatMul", "input": ["x", "w", "b"],
         "attr": {"fused_ops": {"list": {"s": [b64("BiasAdd"), b64("Tanh")]}}, "T": {"type": "DT_FLOAT"}}},
        {"name": "out", "op": "Identity", "input": ["dense/Tanh"]},
    ]}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    assert unfuse_unsupported_activations(path) == ["dense/Tanh"]
    nodes = {n["name"]: n for n in json.loads(path.read_text())["modelTopology"]["node"]}
    assert nodes["dense/Tanh"]["op"] == "Tanh" and nodes["dense/Tanh"]["input"] == ["dense/Tanh/without_tanh"]
    assert nodes["dense/Tanh/without_tanh"]["attr"]["fused_ops"]["list"]["s"] == [b64("BiasAdd")]
    assert nodes["out"]["input"] == ["dense/Tanh"]


def test_unrolled_twin_keeps_the_weights_and_outputs():
    model, tokens = lstm_language_model(unroll=False)
    twin = unrolled_twin(model)
    assert any(getattr(layer, "unroll", False) for layer in twin.layers)
    np.testing.assert_allclose(twin(tokens), model(tokens), atol=1e-6)


def stacked_model(recurrent="LSTM", layers=2, mask_zero=False):
    inputs = keras.Input((6,), dtype="int32", name="words")
    x = keras.layers.Embedding(40, 5, mask_zero=mask_zero)(inputs)
    for i in range(layers):
        x = getattr(keras.layers, recurrent)(7, return_sequences=i < layers - 1)(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(40, activation="softmax", name="next_word")(x))


def read_window(stepper, windows):
    window, width = state_width(stepper)
    state = np.zeros((len(windows), window, width), "float32")
    for t in range(windows.shape[1]):
        probabilities, state = (np.asarray(v) for v in stepper([windows[:, t:t + 1], state]))
    return probabilities


@pytest.mark.parametrize("recurrent, layers", [("LSTM", 1), ("LSTM", 2), ("GRU", 2), ("SimpleRNN", 1)])
def test_window_stepper_predicts_exactly_like_the_window_model(recurrent, layers):
    model = stacked_model(recurrent, layers)
    stepper = window_stepper(model)
    assert [t.name for t in stepper.inputs] == ["token", "state"]
    rng = np.random.default_rng(4)
    windows = rng.integers(0, 40, size=(9, 6)).astype("int32")
    np.testing.assert_allclose(read_window(stepper, windows), model(windows), atol=1e-6)

    stream = rng.integers(0, 40, size=20).astype("int32")
    window, width = state_width(stepper)
    state = np.zeros((1, window, width), "float32")
    for t, token in enumerate(stream):
        probabilities, state = (np.asarray(v) for v in stepper([np.array([[token]], "int32"), state]))
        if t >= window - 1:
            np.testing.assert_allclose(probabilities, model(stream[None, t - window + 1:t + 1]), atol=1e-6,
                                       err_msg=f"one step per token after {t + 1} tokens")


def test_read_windows_streams_overlapping_windows():
    model = stacked_model()
    stepper = window_stepper(model)
    rng = np.random.default_rng(6)
    texts = [rng.integers(0, 40, size=n).astype("int32") for n in (30, 7, 12)]
    windows = np.concatenate([np.lib.stride_tricks.sliding_window_view(t, 6) for t in texts]
                             + [rng.integers(0, 40, size=(3, 6)).astype("int32")])
    calls = []

    def step(inputs):
        calls.append(len(inputs[0]))
        return stepper(inputs)

    got = read_windows(step, windows, state_width(stepper), chunk=10)
    np.testing.assert_allclose(got, model(windows), atol=1e-6)
    assert len(calls) == 6 + 10 - 1, "chunks of at most 10 windows are read side by side"
    assert calls[0] == 3 + 1 + 1 + 3, "25 windows in 3 chunks, 2 and 7 in one each, 3 lone ones"


@pytest.mark.parametrize("exporter_cls", [TFLiteExporter, TFJSExporter], ids=["tflite", "tfjs"])
def test_window_stepper_runs_in_litert_and_tfjs(exporter_cls, tmp_path):
    stepper = window_stepper(stacked_model())
    rng = np.random.default_rng(5)
    inputs = [rng.integers(0, 40, size=(3, 1)).astype("int32"),
              rng.normal(size=(3, *state_width(stepper))).astype("float32")]
    expected = [keras.ops.convert_to_numpy(v) for v in stepper(inputs)]
    outputs, got = convert_and_run(exporter_cls(), stepper, inputs, tmp_path)
    assert outputs == ["next_word", "next_state"]
    for name, want in zip(outputs, expected):
        np.testing.assert_allclose(got[name].reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model, message", [
    (lambda: stacked_model(mask_zero=True), "masks padding"),
    (lambda: stacked_model(layers=0), "at least one LSTM"),
    (lambda: keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4, return_sequences=True)]), "return_sequences"),
])
def test_window_stepper_refuses_models_it_cannot_step(model, message):
    with pytest.raises(ValueError, match=message):
        window_stepper(model())


def test_while_loop_lstm_converts_only_with_a_fixed_batch(tmp_path):
    """A Keras LSTM is a while loop over TensorLists: TFLite's builtin ops take it only when
    every shape is known, which the fixed-batch files are and the any-batch file is not."""
    model, tokens = lstm_language_model(unroll=False)
    expected = keras.ops.convert_to_numpy(model(tokens, training=False))
    outputs, got = convert_and_run(TFLiteExporter(), model, tokens, tmp_path)
    np.testing.assert_allclose(got[outputs[0]], expected, rtol=1e-4, atol=1e-5)
    inputs, outputs = tensor_names(model)
    context = ExportContext(model, None, inputs, outputs, tmp_path)
    (tmp_path / "any").mkdir()
    with pytest.raises(Exception, match="TensorList|tensor list|Flex|select TensorFlow"):
        TFLiteExporter().convert(context, "float32_any_batch", tmp_path / "any")


def test_fixed_shape_files_declare_static_shapes_and_split_other_batches(tmp_path):
    from tinkerflow.exporters.runtime import TFLiteModel

    model, _ = generator()
    x = np.random.default_rng(3).normal(size=(9, 8)).astype("float32")
    inputs, outputs = tensor_names(model)
    context = ExportContext(model, None, inputs, outputs, tmp_path, inference_batch=4)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    for variant, batch in (("float32", 4), ("float32_any_batch", None)):
        folder = tmp_path / variant
        folder.mkdir()
        TFLiteExporter().convert(context, variant, folder)
        lite = TFLiteModel(folder / "model.tflite")
        assert lite.fixed_batch == batch
        assert [spec["shape"][0] for spec in lite.input_specs() + lite.output_specs()] == [batch, batch]
        assert TFLiteExporter().page_check({"inputs": lite.input_specs(), "outputs": lite.output_specs()}) == (
            None if batch else f"input '{inputs[0]}' has shape [None, {x.shape[1]}]: LiteRT.js runs only fixed shapes")
        for n in (1, 4, 6, 9):  # fewer, as many and more rows than the file's batch
            np.testing.assert_allclose(lite.predict(x[:n]), expected[:n], rtol=1e-4, atol=1e-4)
        lite.close()


# -- the pipeline on a real trained run ---------------------------------------------------

@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_dir = train_in_process(root, "experiment.max_sum=16", "experiment.samples=2000", "experiment.test_samples=200",
                               "trainer.epochs=60", "trainer.early_stopping.patience=60", "export=all")
    return run_dir


def test_export_json_records_every_variant(exported_run):
    info = json.loads((exported_run / "export.json").read_text())
    assert set(info["formats"]) == {"tfjs", "tflite"}
    variants = {"float32", "float16", "int8_dynamic", "int8", "float32_any_batch"}
    assert set(info["formats"]["tflite"]["variants"]) == variants, \
        "uint8_io is left out: an addition model's numbers are not bytes"
    assert set(info["formats"]["tfjs"]["variants"]) == {"float32", "float16", "uint8"}
    for fmt, variant in (("tfjs", "float32"), ("tflite", "float32"), ("tflite", "float32_any_batch")):
        record = info["formats"][fmt]["variants"][variant]
        assert record["status"] == "passed"
        assert record["parity"]["max_rel_diff"] <= 1e-5 and record["parity"]["golden_inputs"] >= 5
        assert record["metric"]["name"] == "accuracy"
        assert abs(record["metric"]["exported"] - record["metric"]["keras"]) <= 0.02
        assert record["converter_versions"]["tensorflow"] == importlib.metadata.version("tensorflow")
        for f in record["files"]:
            data = (exported_run / "export" / f["path"]).read_bytes()
            assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    for fmt, variants in info["formats"].items():
        for variant, record in variants["variants"].items():
            assert record["status"] in {"passed", "rejected", "failed"}
            if record["status"] != "passed":
                assert record["error"] and not (exported_run / "export" / fmt / variant).exists()


def test_manifest_tells_a_page_everything(exported_run):
    manifest = json.loads((exported_run / "export" / "tfjs" / "float32" / "manifest.json").read_text())
    assert manifest["experiment"] == "addition" and manifest["format"] == "tfjs" and manifest["file"] == "model.json"
    assert manifest["inputs"] == [{"name": "ab", "shape": [None, 2], "dtype": "float32", "node": "ab:0"}]
    assert manifest["outputs"][0]["name"] == "sum" and manifest["outputs"][0]["node"]
    assert manifest["input_range"] == [0, 8] and "postprocessing" in manifest
    assert manifest["bytes"] == sum(f["bytes"] for f in manifest["files"])
    tflite = json.loads((exported_run / "export" / "tflite" / "float32" / "manifest.json").read_text())
    assert tflite["file"] == "model.tflite"
    assert tflite["inputs"] == [{"name": "ab", "shape": [1, 2], "dtype": "float32"}], "the file's own fixed shape"
    assert tflite["outputs"] == [{"name": "sum", "shape": [1, 1], "dtype": "float32"}]
    assert tflite["signatures"] == ["serving_default", "with_intermediate"], "the page's hidden layer has a signature"
    records = json.loads((exported_run / "export.json").read_text())["formats"]["tflite"]["variants"]
    for variant in ("float32", "float16", "int8_dynamic", "int8"):
        assert records[variant]["page"] == {"runtime": "litertjs", "usable": True}, variant
    assert records["float32_any_batch"]["page"] == {
        "runtime": "litertjs", "usable": False,
        "reason": "not for LiteRT.js: input 'ab' has shape [None, 2]: LiteRT.js runs only fixed shapes"}


def test_intermediate_signature_returns_the_hidden_layer(exported_run):
    from tinkerflow.exporters.runtime import TFLiteModel

    model = keras.saving.load_model(exported_run / "model.keras", compile=False)
    probe = keras.Model(model.input, model.get_layer("hidden").output)
    x = np.array([[2, 2], [3, 5], [8, 8]], dtype="float32")
    lite = TFLiteModel(exported_run / "export" / "tflite" / "float32" / "model.tflite", signature="with_intermediate")
    got = lite.predict_named({"ab": x})
    np.testing.assert_allclose(got["hidden"], keras.ops.convert_to_numpy(probe(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["sum"], keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-4)


def test_every_tflite_file_describes_itself_and_keeps_its_signatures(exported_run):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    from tensorflow.lite.python import schema_py_generated as tflite

    from tinkerflow.exporters.runtime import TFLiteModel
    from tinkerflow.exporters.tflite_metadata import packed_files

    for variant in ("float32", "int8", "float32_any_batch"):
        path = exported_run / "export" / "tflite" / variant / "model.tflite"
        data = path.read_bytes()
        model = tflite.Model.GetRootAs(data, 0)
        entries = {model.Metadata(k).Name(): model.Metadata(k).Buffer() for k in range(model.MetadataLength())}
        meta = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAs(
            model.Buffers(entries[b"TFLITE_METADATA"]).DataAsNumpy().tobytes(), 0))
        assert meta.name.decode() == f"addition ({exported_run.name})" and meta.author.startswith(b"tinkerflow")
        assert meta.version.decode() == exported_run.name and b"add two numbers" in meta.description
        fixed = variant != "float32_any_batch"
        names = [s.name for s in meta.subgraphMetadata]
        assert names == ([b"serving_default", b"with_intermediate"] if fixed else [b"serving_default"])
        for subgraph in meta.subgraphMetadata:
            (ab,) = subgraph.inputTensorMetadata
            assert ab.name == b"ab" and ab.description == b"two numbers a and b, each in 0..8"
        outputs = {t.name: t.description for t in meta.subgraphMetadata[-1].outputTensorMetadata}
        assert outputs[b"sum"] == b"the predicted a + b"
        assert packed_files(data) == {}, "no labels, no archive"
        lite = TFLiteModel(path)
        assert lite.signatures == (["serving_default", "with_intermediate"] if fixed else ["serving_default"])
        np.testing.assert_allclose(lite.predict(np.array([[2, 2]], "float32")), [[4]], atol=0.6)


def test_deploy_bundle_golden_calls_catch_a_wrong_model(exported_run, tmp_path):
    import shutil

    bundle = tmp_path / "deploy"
    shutil.copytree(exported_run / "export" / "deploy", bundle)
    variants = ("float32", "float16", "int8_dynamic", "int8", "float32_any_batch")
    assert sorted(p.name for p in bundle.glob("*.tflite")) == sorted(f"{v}.tflite" for v in variants)
    golden = json.loads((bundle / "golden.json").read_text())
    call = golden["variants"]["float32"]["calls"][0]
    assert len(golden["variants"]["float32"]["calls"]) == 3 and call["inputs"]["ab"]["shape"] == [1, 2]
    model = json.loads((bundle / "model.json").read_text())
    assert model["variants"]["float32"]["signatures"] == ["serving_default", "with_intermediate"]
    assert model["input_range"] == [0, 8] and "labels" not in model and "backend" not in model
    (litert,) = run_readme_python(bundle)
    assert litert.returncode == 0, litert.stderr[-2000:]
    assert len(litert.stdout.splitlines()) == len(variants)
    call["outputs"]["sum"]["data"][0] += 1.0  # one answer off by one: the README's check must notice
    (bundle / "golden.json").write_text(json.dumps(golden))
    (broken,) = run_readme_python(bundle)
    assert broken.returncode != 0 and "AssertionError: float32: sum is off by 0.99" in broken.stderr


def test_runtime_loader_predicts_like_keras(exported_run):
    from tinkerflow.exporters import runtime

    model = keras.saving.load_model(exported_run / "model.keras", compile=False)
    x = np.array([[2, 2], [3, 5], [8, 8]], dtype="float32")
    expected = keras.ops.convert_to_numpy(model(x))
    for path in (exported_run / "export" / "tflite" / "float32" / "model.tflite",
                 exported_run / "export" / "tflite" / "float32",
                 exported_run / "export" / "tfjs" / "float32"):
        np.testing.assert_allclose(runtime.load(path).predict(x), expected, rtol=1e-5, atol=1e-4)
    single = runtime.load(exported_run / "export" / "tflite" / "float32")
    assert single.predict([[1, 2]]).shape == (1, 1) and single.runtime == "litert"
    tflite_file = exported_run / "export" / "tflite" / "float32" / "model.tflite"
    assert runtime.load(tflite_file, runtime="tensorflow").runtime == "tensorflow"


def test_tfjs_in_node_runs_on_the_wasm_backend_and_cpu_on_request(exported_run, monkeypatch):
    from tinkerflow.exporters.node import TFJSWorker

    bundle = exported_run / "export" / "tfjs" / "float32"
    x = {"ab": np.array([[2, 2], [3, 5]], dtype="float32")}
    outputs = {"sum": json.loads((bundle / "manifest.json").read_text())["outputs"][0]["node"]}
    replies = {}
    for backend in ("wasm", "cpu"):
        monkeypatch.setenv("TINKERFLOW_TFJS_BACKEND", backend)
        worker = TFJSWorker(bundle)
        try:
            replies[backend] = worker.run(x, outputs)
        finally:
            worker.close()
        assert replies[backend]["backend"] == backend
    np.testing.assert_allclose(replies["wasm"]["outputs"]["sum"], replies["cpu"]["outputs"]["sum"], rtol=1e-5)


def test_runtime_loader_errors(tmp_path):
    from tinkerflow.core.errors import TinkerflowError
    from tinkerflow.exporters import runtime

    with pytest.raises(TinkerflowError, match="does not exist"):
        runtime.load(tmp_path / "missing.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(TinkerflowError, match="not a loadable TFLite model"):
        runtime.load(bad)
    with pytest.raises(TinkerflowError, match="no TFLite runtime could be loaded .*tflite_runtime"):
        runtime.load(bad, runtime="tflite_runtime")


def test_failed_gate_leaves_the_earlier_export_untouched(exported_run, monkeypatch):
    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.exporters.pipeline import export_run

    target = exported_run / "export" / "tflite" / "float32"
    before = snapshot(target)
    monkeypatch.setattr(TFLiteExporter, "tolerances", {"float32": -1.0})
    report = export_run(exported_run, make_plugin_manager({}), ["tflite"], ["float32"])
    assert not report.ok
    assert snapshot(target) == before
    record = json.loads((exported_run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    assert record["status"] == "failed" and "differs from Keras" in record["error"]
    assert not [p for p in (exported_run / "export").iterdir() if p.name.startswith(".")], "no staging left behind"


def test_export_cli_and_its_bad_input(exported_run, tmp_path):
    cwd = exported_run.parent
    ok = run_cli("export", str(exported_run), "--format", "tflite", "--quantize", "float16", "int8", cwd=cwd)
    assert ok.returncode == 0, ok.stderr
    assert "float16" in ok.stdout and "passed" in ok.stdout
    assert ok.stderr == "", "the converters' and runtimes' own output is kept out of the terminal"
    log = (exported_run / "run.log").read_text()
    assert "native output of converting tflite/int8" in log and "tf.lite.Interpreter is deprecated" in log, \
        "and kept in run.log"
    line = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[[\w.]+\]\[(DEBUG|INFO|WARNING|ERROR)\] ")
    trained = [t for t in log.splitlines() if "][tinkerflow.train]" in t]
    exported = [t for t in log.splitlines() if "][tinkerflow.export" in t]
    assert trained and exported and all(line.match(t) for t in trained[:1] + exported[:1]), \
        "the export's lines look like the training's"

    before = snapshot(exported_run)
    for args, message in [
        (["--format", "onnx"], "unknown export format 'onnx'; expected one of: tfjs, tflite"),
        (["--format", "tflite", "--quantize", "uint8"], "format 'tflite' has no variant 'uint8'"),
    ]:
        bad = run_cli("export", str(exported_run), *args, cwd=cwd)
        assert bad.returncode == 2 and bad.stderr.startswith(f"tinkerflow: error: {message}"), bad.stderr
        assert bad.stderr.count("\n") == 1
    assert snapshot(exported_run) == before

    no_node = run_cli("export", str(exported_run), "--format", "tfjs", "--quantize", "float32", cwd=cwd,
                      env={"PATH": str(Path(os.sys.executable).parent)})
    assert no_node.returncode == 1
    assert "Node.js is not installed" in no_node.stderr
    assert (exported_run / "export" / "tfjs" / "float32" / "model.json").is_file(), "earlier export untouched"


def test_a_quantized_variant_rejected_for_accuracy_is_a_result_not_an_error(exported_run, tmp_path, monkeypatch,
                                                                             capsys):
    import shutil

    from tinkerflow.core.cli import main
    from tinkerflow.plugins.addition.experiment import Addition

    run = tmp_path / exported_run.name
    shutil.copytree(exported_run, run)
    spec = dataclasses.replace(Addition.export_spec)
    object.__setattr__(spec, "margin", -1.0)  # past ExportSpec's own check: any quantized variant now loses too much
    monkeypatch.setattr(Addition, "export_spec", spec)
    args = ["export", str(run), "--format", "tflite", "--quantize", "float32", "int8_dynamic"]
    assert main(args) == 0, "every float variant passed"
    out = capsys.readouterr()
    assert "rejected: tflite/int8_dynamic: tflite/int8_dynamic accuracy is" in out.out and "failed" not in out.err
    variants = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]
    assert variants["int8_dynamic"]["status"] == "rejected" and variants["float32"]["status"] == "passed"
    assert main([*args, "--strict"]) == 1

    monkeypatch.setattr(TFLiteExporter, "tolerances", {"float32": -1.0})
    assert main(args) == 1, "a float variant that differs from Keras stays an error"
    assert "export tflite/float32 failed: tflite/float32 differs from Keras" in capsys.readouterr().err


def test_export_refuses_failed_and_corrupt_runs(exported_run, tmp_path):
    import shutil

    failed = tmp_path / "failed_run"
    shutil.copytree(exported_run, failed)
    info = read_run(failed)
    info["status"] = "failed"
    (failed / "run.json").write_text(json.dumps(info))
    result = run_cli("export", str(failed), cwd=tmp_path)
    assert result.returncode == 2 and "has status 'failed'; expected a completed run" in result.stderr

    corrupt = tmp_path / "corrupt_run"
    shutil.copytree(exported_run, corrupt)
    (corrupt / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    before = snapshot(corrupt)
    result = run_cli("export", str(corrupt), "--format", "tflite", cwd=tmp_path)
    assert result.returncode == 2 and "model.keras: cannot load it" in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(corrupt) == before
