"""The JAX training backend: the whole-epoch loop against Keras itself, and the CLI on JAX.

Keras picks its backend once per process and this test process runs on TensorFlow, so
the JAX side runs in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import only_run_dir, read_run, run_cli

SMOKE = ["experiment.samples=200", "experiment.test_samples=50", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]

PRELUDE = """
import json, os
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np, keras
from tinkerflow.core import jax_loop

def data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.1).astype("float32")

def model(lr=0.01):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    m.compile(keras.optimizers.Adam(lr), "mse", metrics=["mae"])
    return m

class Weights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = []
    def on_epoch_end(self, epoch, logs=None):
        self.seen.append([w.tolist() for w in self.model.get_weights()])
"""


def run_jax(body: str) -> dict:
    code = PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_validation_logs_equal_keras_evaluate_with_ragged_batches():
    out = run_jax("""
        m = model()
        train, val = data(1010, 1), data(203, 2)   # neither divides into batches of 32
        assert jax_loop.supports(m, train, val)
        h = jax_loop.fit(m, train, val, epochs=3, batch_size=32, callbacks=[], seed=0)
        ev = m.evaluate(*val, batch_size=32, verbose=0, return_dict=True)
        print(json.dumps({"history": h.history, "evaluate": ev}))
    """)
    history, evaluated = out["history"], out["evaluate"]
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    np.testing.assert_allclose(history["val_loss"][-1], evaluated["loss"], rtol=1e-5)
    np.testing.assert_allclose(history["val_mae"][-1], evaluated["mae"], rtol=1e-5)


def _epochs(run_dir) -> list[dict]:
    import csv

    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_one_seed_is_one_run_on_either_backend(tmp_path):
    """The default addition run (200 epochs, learning-rate reduction, early stopping), seed 1,
    on TensorFlow and on JAX: the same epochs, the same learning-rate steps and the same
    metrics. Both start from the seed's NumPy-drawn weights and visit the batches in the
    seed's order; what is left between them is float32 sums done in other orders by
    TensorFlow's kernels and XLA's (about 1e-7 relative per step, growing over 50,000 steps).
    Measured: the test MSE and best validation loss 3e-5 relative apart, test accuracy and
    best epoch equal; each epoch's losses within 1.0e-3 (the largest in the spikes, where one
    step moves the weights most). The tolerances allow 2-15x that, and one test sum in 2,000
    rounding the other way."""
    runs = {}
    for backend in ("tensorflow", "jax"):
        done = run_cli("train", "seed=1", f"trainer.backend={backend}", f"hydra.run.dir={backend}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[backend] = (read_run(tmp_path / backend), _epochs(tmp_path / backend))
    (tf_info, tf_epochs), (jax_info, jax_epochs) = runs["tensorflow"], runs["jax"]
    assert (tf_info["backend"], jax_info["backend"]) == ("tensorflow", "jax")
    assert len(tf_epochs) == len(jax_epochs) == tf_info["epochs_run"] == jax_info["epochs_run"]
    assert [r["learning_rate"] for r in tf_epochs] == [r["learning_rate"] for r in jax_epochs], "same LR steps"
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose([float(r[name]) for r in jax_epochs], [float(r[name]) for r in tf_epochs],
                                   rtol=2e-3, err_msg=name)
    tf_metrics, jax_metrics = tf_info["metrics"], jax_info["metrics"]
    for name in ("test_mse", "test_mae", "best_val_loss"):
        np.testing.assert_allclose(jax_metrics[name], tf_metrics[name], rtol=5e-4, err_msg=name)
    assert abs(jax_metrics["test_accuracy"] - tf_metrics["test_accuracy"]) <= 1 / 2000
    assert tf_metrics["test_accuracy"] > 0.9, "it learnt to add: the comparison means something"


ORDERED = """
    import sys
    from tinkerflow.core.batch_order import shuffled_batches
    from tinkerflow.core.config import TrainerConfig
    from tinkerflow.plugins.addition.experiment import Addition, AdditionConfig

    spe = int(sys.argv[1])
    experiment = Addition(AdditionConfig(samples=2000), TrainerConfig(learning_rate=0.01, steps_per_execution=spe),
                          seed=0)
    splits = experiment.load_data()
    m = experiment.build_model()
    experiment.initialize(m)
    if sys.argv[2] == "loop":
        h = jax_loop.fit(m, splits.train, splits.validation, epochs=3, batch_size=32, callbacks=[], seed=0)
    else:
        batches, order = shuffled_batches(*splits.train, 32, 0)
        h = m.fit(batches, validation_data=splits.validation, epochs=3, callbacks=[order], verbose=0)
    print(json.dumps(h.history))
"""


@pytest.mark.parametrize("steps_per_execution", [7, 250])
def test_every_path_trains_on_the_seeds_batches(steps_per_execution):
    """1,600 training samples are 50 batches: with 7 steps per call an epoch ends inside one,
    with 250 before the first ends. The JAX loop, TensorFlow's fit and Keras' fit on JAX
    (``trainer.loop=keras``) see the same batches in every epoch, and no call reaches into
    the next epoch's."""
    histories = {}
    for backend, path in (("jax", "loop"), ("tensorflow", "fit"), ("jax", "fit")):
        code = PRELUDE.replace('os.environ["KERAS_BACKEND"] = "jax"', f'os.environ["KERAS_BACKEND"] = "{backend}"')
        done = subprocess.run([sys.executable, "-c", code + textwrap.dedent(ORDERED), str(steps_per_execution), path],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend})
        assert done.returncode == 0, done.stderr[-3000:]
        histories[f"{backend} {path}"] = json.loads(done.stdout.strip().splitlines()[-1])
    reference = histories.pop("jax loop")
    for name, history in histories.items():
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(history[key], reference[key], rtol=1e-5, err_msg=f"{name}: {key}")


def test_the_loop_trains_as_tensorflow_fit_does_from_the_same_start_and_order():
    """The default addition model from the same initial weights, batches in the same order
    (unshuffled), Adam at 0.01, 10 epochs: JAX's whole-epoch loop and TensorFlow's
    ``model.fit`` (this process) follow the same path. What separates them is float32 sums
    done in other orders by XLA and TensorFlow's kernels: measured 4e-5 relative on the
    losses and 3e-6 on the weights after 10 epochs (2,500 steps), the tolerances below allow
    about 20× that."""
    script = """
        from tinkerflow.core.config import TrainerConfig
        from tinkerflow.plugins.addition.experiment import Addition, AdditionConfig

        experiment = Addition(AdditionConfig(), TrainerConfig(learning_rate=0.01), seed=0)
        splits = experiment.load_data()
        m = experiment.build_model()
        rng = np.random.default_rng(0)
        m.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in m.get_weights()])
        if keras.backend.backend() == "jax":
            h = jax_loop.fit(m, splits.train, splits.validation, epochs=10, batch_size=32, callbacks=[], seed=0,
                             shuffle=False)
        else:
            h = m.fit(*splits.train, validation_data=splits.validation, batch_size=32, epochs=10, shuffle=False,
                      verbose=0)
        print(json.dumps({"history": h.history, "weights": [w.ravel().tolist() for w in m.get_weights()]}))
    """
    on_jax = run_jax(script)
    code = PRELUDE.replace('os.environ["KERAS_BACKEND"] = "jax"', 'os.environ["KERAS_BACKEND"] = "tensorflow"')
    done = subprocess.run([sys.executable, "-c", code + textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-3000:]
    on_tf = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose(on_jax["history"][name], on_tf["history"][name], rtol=1e-3, err_msg=name)
    for name in ("rounded_accuracy", "val_rounded_accuracy"):  # a sum on the edge of .5 may round either way
        np.testing.assert_allclose(on_jax["history"][name], on_tf["history"][name], atol=2e-3, err_msg=name)
    assert on_tf["history"]["loss"][-1] < on_tf["history"]["loss"][0] / 100, "it learnt: the comparison means something"
    for jax_w, tf_w in zip(on_jax["weights"], on_tf["weights"]):
        np.testing.assert_allclose(jax_w, tf_w, atol=1e-4)


def test_learning_rate_set_by_a_callback_is_used_from_the_next_epoch():
    out = run_jax("""
        m, seen = model(), Weights()
        zero_after_first = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch == 0 else 0.0)
        jax_loop.fit(m, data(256, 1), data(64, 2), epochs=3, batch_size=32, callbacks=[zero_after_first, seen], seed=0)
        print(json.dumps({"seen": seen.seen, "lr": float(m.optimizer.learning_rate)}))
    """)
    first, second, third = ([np.asarray(w) for w in ws] for ws in out["seen"])
    assert out["lr"] == 0.0
    assert any(not np.allclose(a, b) for a, b in zip(first, [np.zeros_like(w) for w in first]))
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)


def test_early_stopping_stops_and_restores_the_best_weights():
    out = run_jax("""
        m, seen = model(), Weights()
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9, restore_best_weights=True)
        h = jax_loop.fit(m, data(256, 1), data(64, 2), epochs=50, batch_size=32, callbacks=[stop, seen], seed=0)
        print(json.dumps({"epochs": len(h.history["loss"]), "seen": seen.seen,
                          "final": [w.tolist() for w in m.get_weights()]}))
    """)
    assert out["epochs"] == 2, "min_delta=1e9 means no epoch improves on the first"
    for best, final in zip(out["seen"][0], out["final"]):
        np.testing.assert_array_equal(np.asarray(best), np.asarray(final))


def test_same_seed_same_run_other_seed_other_run():
    out = run_jax("""
        runs = []
        for seed in (3, 3, 4):
            h = jax_loop.fit(model(), data(300, 1), data(64, 2), epochs=2, batch_size=32, callbacks=[], seed=seed)
            runs.append(h.history["val_loss"])
        print(json.dumps(runs))
    """)
    assert out[0] == out[1]
    assert out[0] != out[2], "the seed drives the order of batches"


def test_cli_trains_on_jax_and_exports_through_tensorflow(tmp_path):
    result = run_cli("train", *SMOKE, "trainer.backend=jax", "export=tflite", "export.variants=[float32]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "addition")
    info = read_run(run_dir)
    assert info["backend"] == "jax" and info["status"] == "completed" and info["epochs_run"] == 2
    exported = json.loads((run_dir / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    assert exported["status"] == "passed" and exported["parity"]["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("overrides, expected", [
    (["-m", *SMOKE, "trainer.backend=jax,tensorflow"], "trainer.backend takes one value per sweep"),
    ([*SMOKE, "trainer.backend=torch"], "trainer.backend"),
    (["experiment=dcgan", "debug=smoke", "trainer.backend=jax"],
     "trainer.backend=jax: the dcgan experiment trains on tensorflow only; "
     "expected trainer.backend=tensorflow or auto"),
])
def test_backend_errors_are_one_line(tmp_path, overrides, expected):
    result = run_cli("train", *overrides, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("run.json"))


def test_jax_missing_is_named_with_the_command_that_installs_it(tmp_path):
    code = ("import sys; sys.modules['jax'] = None; from tinkerflow.core.cli import main; "
            f"sys.exit(main(['train', 'paths.runs={tmp_path / 'runs'}', 'trainer.backend=jax', *{SMOKE!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "trainer.backend=jax needs JAX, which is not installed; install it with pip install 'jax>=0.7'" \
           in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "runs").glob("*/*/run.json")), "refused before a run starts"


def test_auto_trains_on_tensorflow_where_jax_is_missing(tmp_path):
    code = ("import sys; sys.modules['jax'] = None; from tinkerflow.core.cli import main; "
            f"sys.exit(main(['train', 'paths.runs={tmp_path / 'runs'}', *{SMOKE!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    info = read_run(only_run_dir(tmp_path / "runs", "addition"))
    assert info["backend"] == "tensorflow" and info["status"] == "completed"


def test_auto_picks_the_experiments_first_backend(tmp_path):
    """addition lists JAX first; the dcgan trains on TensorFlow only."""
    addition = run_cli("train", *SMOKE, "hydra.run.dir=addition", cwd=tmp_path)
    dcgan = run_cli("train", "experiment=dcgan", "debug=smoke", "hydra.run.dir=dcgan", cwd=tmp_path)
    assert addition.returncode == 0 and dcgan.returncode == 0, (addition.stderr + dcgan.stderr)[-2000:]
    assert read_run(tmp_path / "addition")["backend"] == "jax"
    assert read_run(tmp_path / "dcgan")["backend"] == "tensorflow"


def test_jax_programs_are_compiled_once_and_kept_in_the_users_cache(tmp_path):
    """The second run of one config reads its compiled epoch from the cache (the cache does
    not grow) and trains to the same metrics; TINKERFLOW_JAX_CACHE=0 writes none."""
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    first = run_cli("train", *SMOKE, "hydra.run.dir=first", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    folder = cache / "tinkerflow" / "jax"
    programs = sorted(p.name for p in folder.glob("*-cache"))
    assert programs, "the first run compiled its programs into the cache"
    used = {p.name: p.read_bytes() for p in folder.glob("*-atime")}  # JAX stamps an entry each time it reads it
    second = run_cli("train", *SMOKE, "hydra.run.dir=second", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert sorted(p.name for p in folder.glob("*-cache")) == programs, "nothing compiled anew"
    assert all((folder / name).read_bytes() != stamp for name, stamp in used.items()), "every program read back"
    assert read_run(tmp_path / "second")["metrics"] == read_run(tmp_path / "first")["metrics"]
    off = run_cli("train", *SMOKE, "hydra.run.dir=off", cwd=tmp_path,
                  env={"XDG_CACHE_HOME": str(tmp_path / "none"), "TINKERFLOW_JAX_CACHE": "0"})
    assert off.returncode == 0 and read_run(tmp_path / "off")["backend"] == "jax"
    assert not (tmp_path / "none" / "tinkerflow").exists()
