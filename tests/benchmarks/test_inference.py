"""Inference speed per runtime, with pytest-benchmark (opt in: `make bench`).

    pytest tests/benchmarks --benchmark-enable --benchmark-autosave
    pytest tests/benchmarks --benchmark-enable --benchmark-compare     # against the last save

Each registered experiment is trained with its smoke overrides and exported to every
format; then single-sample latency and batch throughput are timed for Keras ``model(x)``,
Keras ``predict``, LiteRT float32 and int8, a bare LiteRT ``invoke`` (the floor), and tfjs
in Node (a round trip to the Node worker; Node's own timing is in ``extra_info``).
"""

from __future__ import annotations

import functools
import statistics

import numpy as np
import pytest

from conftest import train_in_process
from tinkerflow.core.plugins import make_plugin_manager

EXPERIMENTS = sorted(make_plugin_manager().experiments)


@pytest.fixture(scope="module", params=EXPERIMENTS)
def exported(request, tmp_path_factory):
    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run

    registry = make_plugin_manager()
    experiment_cls = registry.experiment(request.param)
    run_dir = train_in_process(tmp_path_factory.mktemp(request.param), f"experiment={request.param}",
                               *experiment_cls.smoke_overrides)
    from tinkerflow.exporters.pipeline import export_run

    export_run(run_dir, registry)  # variants that fail their gate are skipped below
    run, experiment = open_run(run_dir, registry)
    model = experiment.export_model(run.load_model(experiment.custom_objects()))
    from tinkerflow.exporters.bench import inputs_for

    single, batched = inputs_for(experiment, 256)
    return run, model, single, batched


def _x(arrays):
    return arrays if len(arrays) > 1 else arrays[0]


@pytest.mark.parametrize("size", ["single", "batch"])
def test_keras_call(benchmark, exported, size):
    _, model, single, batched = exported
    x = _x(single if size == "single" else batched)
    benchmark(functools.partial(model, x, training=False))


@pytest.mark.parametrize("size", ["single", "batch"])
def test_keras_predict(benchmark, exported, size):
    _, model, single, batched = exported
    x = _x(single if size == "single" else batched)
    benchmark(functools.partial(model.predict, x, verbose=0))


@pytest.mark.parametrize("variant", ["float32", "int8"])
@pytest.mark.parametrize("size", ["single", "batch"])
def test_litert(benchmark, exported, variant, size):
    from tinkerflow.exporters import runtime

    run, _, single, batched = exported
    path = run.export_dir / "tflite" / variant / "model.tflite"
    if not path.is_file():
        pytest.skip(f"the {variant} export did not pass its gate for this run")
    model = runtime.load(path)
    inputs = single if size == "single" else batched
    expected = model.predict(*inputs)
    result = benchmark(functools.partial(model.predict, *inputs))
    np.testing.assert_array_equal(result, expected)


def test_bare_litert_invoke(benchmark, exported):
    from tinkerflow.exporters.bench import _bare_invoke

    run, _, single, _ = exported
    if len(single) != 1:
        pytest.skip("the bare invoke floor is measured for single-input models")
    benchmark(_bare_invoke(run.export_dir / "tflite" / "float32" / "model.tflite", single[0]))


@pytest.mark.parametrize("size", ["single", "batch"])
def test_tfjs_node(benchmark, exported, size):
    from tinkerflow.exporters.runtime import TFJSModel

    run, _, single, batched = exported
    model = TFJSModel(run.export_dir / "tfjs" / "float32")
    inputs = dict(zip(model.input_names, single if size == "single" else batched))
    try:
        node_ms = model.run(inputs, repeat=50)["timings_ms"]
        benchmark.extra_info["node_internal_median_ms"] = statistics.median(node_ms)
        benchmark(functools.partial(model.predict_named, inputs))
    finally:
        model.close()
