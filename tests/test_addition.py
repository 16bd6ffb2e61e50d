"""The addition experiment follows its protocol (docs/experiments/addition.md) and really learns to add."""

from __future__ import annotations

import csv
import importlib.metadata
import json

import numpy as np
import pytest

from conftest import read_run, train_in_process
from tinkerflow.core.config import TrainerConfig
from tinkerflow.plugins.addition.experiment import Addition, AdditionConfig, parse_pairs


def make(**config):
    return Addition(AdditionConfig(**config), TrainerConfig(), seed=3)


def test_data_follows_the_protocol():
    data = make(max_sum=16, samples=10000).load_data()
    x_train, y_train = data.train
    x_val, y_val = data.validation
    x_test, y_test = data.test
    assert len(x_train) == 8000 and len(x_val) == 2000 and len(x_test) == 2000
    for x, y in (data.train, data.validation, data.test):
        assert x.min() == 0 and x.max() == 8, "both numbers are drawn from 0..max_sum/2"
        np.testing.assert_array_equal(x.sum(axis=1, keepdims=True), y)
        assert y.max() <= 16
    # uniform operands: sums near max_sum/2 are the most common, as the post noticed
    counts = np.bincount(y_train.astype(int).ravel(), minlength=17)
    assert counts.argmax() == 8
    # the test set is drawn separately, not carved out of the training samples
    assert not np.array_equal(x_test[:50], x_train[:50])


def test_data_is_reproducible_from_the_seed():
    a, b = make().load_data(), make().load_data()
    np.testing.assert_array_equal(a.train[0], b.train[0])
    other = Addition(AdditionConfig(), TrainerConfig(), seed=4).load_data()
    assert not np.array_equal(a.train[0], other.train[0])


def test_model_is_one_sigmoid_hidden_layer_and_one_linear_output():
    model = make(hidden=4).build_model()
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [d.units for d in dense] == [4, 1]
    assert dense[0].activation.__name__ == "sigmoid"
    assert dense[1].activation.__name__ == "linear"
    assert model.loss == "mse"


def test_accuracy_counts_only_exact_sums_after_rounding():
    from tinkerflow.plugins.addition.experiment import rounded_accuracy

    y_true = np.array([[4.0], [4.0], [10.0], [10.0]], dtype="float32")
    y_pred = np.array([[4.4], [4.6], [9.51], [10.49]], dtype="float32")
    assert float(rounded_accuracy(y_true, y_pred)) == pytest.approx(0.75)


def test_parse_pairs():
    assert parse_pairs("2+2, 60+60") == [(2, 2), (60, 60)]
    from tinkerflow.core import ConfigError

    with pytest.raises(ConfigError, match="expected pairs such as"):
        parse_pairs("2-2")


def test_training_learns_to_add_and_writes_a_complete_run(tmp_path):
    run_dir = train_in_process(
        tmp_path, "experiment.max_sum=16", "experiment.samples=2000", "experiment.test_samples=500",
        "trainer.epochs=80", "trainer.early_stopping.patience=80",
    )
    info = read_run(run_dir)
    assert info["status"] == "completed"
    assert info["experiment"] == "addition"
    assert info["metrics"]["test_accuracy"] >= 0.95, info["metrics"]
    assert info["metrics"]["test_mse"] < 0.1
    assert info["versions"]["tensorflow"] == importlib.metadata.version("tensorflow") and info["seed"] == 0
    assert set(info["timings"]) >= {"data_s", "build_s", "fit_s", "evaluate_s", "sample_s", "total_s"}
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert len(rows) == info["epochs_run"] == 80
    assert {"epoch", "loss", "val_loss", "val_rounded_accuracy", "seconds"} <= set(rows[0])
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"] == 80
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "run completed" in (run_dir / "run.log").read_text()

    samples = info["samples"]
    for name in samples["files"]:
        assert (run_dir / "samples" / name).stat().st_size > 0
    assert (run_dir / "samples" / "error_surface.png").read_bytes()[:4] == b"\x89PNG"
    first = (run_dir / "samples" / "predictions.txt").read_text().splitlines()[0]
    assert first.startswith("2 + 2 = ")
    assert len(samples["hidden_to_output_weights"]) == 8
    assert len(samples["hidden_activations_2_plus_2"]) == 8
    assert samples["error_surface"]["share_correct"] >= 0.9

    import keras

    model = keras.saving.load_model(run_dir / "model.keras", custom_objects=Addition.custom_objects(None),
                                    safe_mode=True)
    prediction = float(np.asarray(model(np.array([[3.0, 5.0]], dtype="float32")))[0, 0])
    assert round(prediction) == 8


def test_same_seed_same_metrics(tmp_path):
    smoke = list(Addition.smoke_overrides)
    a = read_run(train_in_process(tmp_path / "a", *smoke, "seed=5"))
    b = read_run(train_in_process(tmp_path / "b", *smoke, "seed=5"))
    c = read_run(train_in_process(tmp_path / "c", *smoke, "seed=6"))
    assert a["metrics"] == b["metrics"]
    assert a["metrics"] != c["metrics"]
