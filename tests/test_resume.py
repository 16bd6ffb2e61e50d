"""Resume after a crash: real training processes killed with SIGKILL, then continued.

Counts the kills survived and checks that no epoch is trained twice beyond the one in
flight, that the record is whole and that every epoch's loss and the finished model's
metrics are an uninterrupted run's, exactly; also restores early stopping, optimizer and
random states in process, and resumes a sweep whose own process was killed.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import kill_group, read_run, run_cli, start_cli

RUN = ["experiment=addition", "experiment.samples=2000", "experiment.test_samples=500", "trainer.epochs=120",
       "trainer.early_stopping.enabled=false", "trainer.progress=plain", "trainer.checkpoint_seconds=0"]


def _wait_for(ready, process: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError(f"the process did not get there within {timeout} s")


def _epochs(run_dir: Path) -> list[int]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _losses(run_dir: Path) -> list[float]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def _checkpoint_epoch(run_dir: Path) -> int:
    state = run_dir / "checkpoints" / "state.json"
    return json.loads(state.read_text())["epoch"] if state.is_file() else 0


def test_a_run_killed_at_random_moments_finishes_as_if_never_killed(tmp_path):
    """Three SIGKILLs at moments chosen by progress; tracked in MLflow, which gets every epoch.
    The resumed run ends with the uninterrupted one's metrics, to the last bit: every epoch's
    batches come from the seed and the epoch's number, and the checkpoint holds the exact
    weights, optimizer and callback states."""
    reference = run_cli("train", *RUN, "hydra.run.dir=reference", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = read_run(tmp_path / "reference")

    run_dir = tmp_path / "killed"
    chooser = random.Random(20261123)
    kills, retrained = 0, []
    process = start_cli(["train", *RUN, "tracking=mlflow", f"hydra.run.dir={run_dir}"], tmp_path, subprocess.PIPE)
    def training(attempt: int):
        def ready():
            try:
                return (run_dir / "metrics.csv").is_file() and len(read_run(run_dir).get("resumes") or []) == attempt
            except (OSError, ValueError):
                return False
        return ready

    while kills < 3:
        if not _wait_for(training(kills), process):
            break
        target = _checkpoint_epoch(run_dir) + chooser.randint(1, 12)  # a moment chosen by progress, not by the clock
        if not _wait_for(lambda target=target: _checkpoint_epoch(run_dir) >= target, process):
            break
        kill_group(process)
        kills += 1
        assert read_run(run_dir)["status"] == "running", "SIGKILL leaves the record of a run in progress"
        rows, saved = len(_epochs(run_dir)), _checkpoint_epoch(run_dir)
        retrained.append(rows - saved)
        process = start_cli(["train", "--resume", str(run_dir)], tmp_path, subprocess.PIPE)
    assert process.wait(timeout=300) == 0, process.stderr.read()[-2000:]
    assert kills == 3, "the run finished before it could be killed three times; lengthen it"

    info = read_run(run_dir)
    assert info["status"] == "completed" and info["epochs_run"] == 120
    assert len(info["resumes"]) == kills and all(r["was"] == "running" for r in info["resumes"])
    assert _epochs(run_dir) == list(range(1, 121)), "metrics.csv holds every epoch once"
    assert all(n <= 1 for n in retrained), f"epochs trained again beyond the one in flight: {retrained}"
    assert _losses(run_dir) == _losses(tmp_path / "reference"), "every epoch after a resume as in the run never killed"
    ours, theirs = info["metrics"]["test_mae"], expected["metrics"]["test_mae"]
    assert info["metrics"] == expected["metrics"], "the same batches, weights and optimizer state: the same run"
    print(f"\n{kills} kills survived; epochs trained again per kill: {retrained}; "
          f"test_mae {ours:.4f} resumed vs {theirs:.4f} uninterrupted")
    load = run_cli("sample", str(run_dir), cwd=tmp_path)
    assert load.returncode == 0, load.stderr
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-00120.npz", "state.json"]

    from mlflow.tracking import MlflowClient

    tracked = info["tracking"]["mlflow"]
    store = MlflowClient(tracked["uri"])
    [run] = store.search_runs([tracked["experiment_id"]])
    assert run.info.run_id == tracked["run_id"] and run.info.status == "FINISHED", "one MLflow run, finished"
    steps = [m.step for m in store.get_metric_history(run.info.run_id, "loss")]
    assert sorted(set(steps)) == list(range(120)), "every epoch, also those a kill kept from being sent"
    assert len(steps) - 120 <= sum(retrained), "an epoch is logged twice only where it was trained twice"


def test_a_tensorflow_run_killed_mid_training_ends_as_the_uninterrupted_one(tmp_path):
    """The same on the TensorFlow backend, whose fit reads the seed's batch order from a
    ``tf.data`` pipeline: killed once after epoch 40 of 120, resumed, the same metrics."""
    run = [*RUN, "trainer.backend=tensorflow"]
    reference = run_cli("train", *run, "hydra.run.dir=reference", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-2000:]
    run_dir = tmp_path / "killed"
    process = start_cli(["train", *run, f"hydra.run.dir={run_dir}"], tmp_path)
    assert _wait_for(lambda: _checkpoint_epoch(run_dir) >= 40, process), "the run ended before epoch 40"
    kill_group(process)
    resumed = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    info = read_run(run_dir)
    assert info["backend"] == "tensorflow" and info["resumes"][0]["after_epoch"] >= 40
    assert info["metrics"] == read_run(tmp_path / "reference")["metrics"]


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    done = run_cli("train", "experiment=addition", "debug=smoke", "hydra.run.dir=done", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "done").rglob("*") if p.is_file()}
    for args, message in [
    (["--resume", "done", "trainer.epochs=3"], "takes no overrides"),
        (["--resume", str(tmp_path / "nowhere")], "does not exist"),
        (["--resume"], "needs a run or sweep directory"),
    ]:
        result = run_cli("train", *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "done").rglob("*") if p.is_file()}

    again = run_cli("train", "--resume", "done", cwd=tmp_path)  # a pre-empted job started again: idempotent
    assert again.returncode == 0 and "holds a completed run; nothing to resume" in again.stderr, again.stderr
    assert again.stdout.splitlines() == [f"  {k} = {v:.6g}" for k, v in read_run(tmp_path / "done")["metrics"].items()]
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "done").rglob("*") if p.is_file()}

    state = tmp_path / "done" / "checkpoints" / "state.json"
    info = read_run(tmp_path / "done")
    info["status"] = "running"
    (tmp_path / "done" / "run.json").write_text(json.dumps(info))
    state.write_text("{not json")
    record = (tmp_path / "done" / "run.json").read_bytes()
    result = run_cli("train", "--resume", "done", cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("tinkerflow: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "state.json: cannot read it" in errors[0], result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert (tmp_path / "done" / "run.json").read_bytes() == record, "a refused resume changes nothing"


@pytest.mark.parametrize("arrays, message", [
    ({"v00000": np.zeros((3, 3))}, "holds 1 arrays where this run's model and optimizers have"),
    ("shapes", "array 0 has shape (3, 8) where"),
    ("cut", "cannot load it into the model"),
], ids=["other count", "other shapes", "cut short"])
def test_a_checkpoint_of_another_model_is_refused_in_one_line(tmp_path, arrays, message):
    done = run_cli("train", "experiment=addition", "debug=smoke", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    info = read_run(run_dir)
    info["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(info))
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    weights = run_dir / "checkpoints" / state["weights"]
    assert weights.suffix == ".npz"
    if arrays == "cut":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        with np.load(weights) as saved:
            real = {name: saved[name] for name in saved.files}
        if arrays == "shapes":
            arrays = {**real, "v00000": np.zeros((3, 8), "float32")}
        np.savez(weights, **arrays)
    kept = weights.read_bytes()
    result = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("tinkerflow: error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "expected the checkpoint of this run's model" in errors[0]
    assert read_run(run_dir)["status"] == "failed" and weights.read_bytes() == kept, "the checkpoint is kept as it was"


def test_checkpoint_restores_optimizer_early_stopping_and_random_states(tmp_path):
    import keras

    from tinkerflow.core.resume import ResumeCheckpoint, ResumePoint

    def model():
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8), keras.layers.Dropout(0.5, seed=3),
                              keras.layers.Dense(1)])
        m.compile("adam", "mse")
        return m

    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    y = x.sum(axis=1)
    first = model()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    checkpoint = ResumeCheckpoint(tmp_path, 0.0, [stop])  # the weights of the last epoch, not the best
    at_epoch_end = []
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: at_epoch_end.append(first.get_weights()))
    first.fit(x, y, epochs=4, callbacks=[stop, keep, checkpoint], verbose=0)
    np.random.rand(3)  # the generators move on after the checkpoint; a resume must rewind them
    expected_numpy = np.random.get_state()[1].copy()

    point = ResumePoint.read(tmp_path)
    assert point.epoch == 4 and len(point.history["loss"]) == 4
    second = model()
    point.load_into(second)
    assert int(second.optimizer.iterations.numpy()) == int(first.optimizer.iterations.numpy()) == 8
    for a, b in zip(first.optimizer.variables, second.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(at_epoch_end[-1], second.get_weights()):
        np.testing.assert_array_equal(a, b)
    restored_stop = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    resumed = ResumeCheckpoint(tmp_path, 0.0, [restored_stop], point=point)
    resumed.set_model(second)
    restored_stop.on_train_begin()
    resumed.on_train_begin()
    assert (restored_stop.best, restored_stop.best_epoch, restored_stop.wait) == (stop.best, stop.best_epoch, stop.wait)
    for a, b in zip(stop.best_weights, restored_stop.best_weights):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.random.get_state()[1], expected_numpy)
    assert np.array_equal(np.random.get_state()[1], point.rng["numpy"][1]), "the NumPy state is the checkpoint's"
    seeds = [v for v in second.non_trainable_variables if "seed_generator_state" in v.path]
    originals = [v for v in first.non_trainable_variables if "seed_generator_state" in v.path]
    assert seeds and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(seeds, originals))
    history = second.fit(x, y, epochs=6, initial_epoch=point.epoch, callbacks=[restored_stop, resumed], verbose=0)
    assert len(history.history["loss"]) == 2 and len(resumed.history["loss"]) == 6
    assert ResumePoint.read(tmp_path).epoch == 6


def test_a_sweep_killed_mid_job_reruns_only_unfinished_jobs(tmp_path):
    args = ["train", "-m", "experiment=addition", "experiment.hidden=2,3,4", "experiment.samples=2000",
            "experiment.test_samples=200", "trainer.epochs=40", "trainer.early_stopping.enabled=false",
            "trainer.progress=none", "trainer.checkpoint_seconds=0", f"paths.runs={tmp_path / 'runs'}"]
    process = start_cli(args, tmp_path)
    sweeps = tmp_path / "runs" / "addition" / "multirun"
    deadline = time.monotonic() + 600
    while not any(_checkpoint_epoch(job) >= 3 for job in sweeps.glob("*/1")):
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before its second job trained"
        time.sleep(0.05)
    kill_group(process)
    (sweep,) = sweeps.iterdir()
    assert read_run(sweep / "0")["status"] == "completed" and read_run(sweep / "1")["status"] == "running"
    first_job = (sweep / "0" / "model.keras").read_bytes()
    saved = _checkpoint_epoch(sweep / "1")

    resumed = run_cli(*args, "--resume", str(sweep), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (sweep / "0" / "model.keras").read_bytes() == first_job, "the completed job was not trained again"
    assert "job 0 completed earlier" in resumed.stderr
    assert [read_run(sweep / j)["status"] for j in "012"] == ["completed"] * 3
    (resume,) = read_run(sweep / "1")["resumes"]
    assert resume["after_epoch"] == saved
    assert all(_epochs(sweep / j) == list(range(1, 41)) for j in "012")
    assert "resumes" not in read_run(sweep / "2")
    assert not (sweep / ".attempts").exists(), "nothing had to be set aside"


@pytest.mark.parametrize("stage", ["after training", "before the first epoch", "recorded before a knob existed"])
def test_resume_when_the_checkpoint_is_at_either_end(tmp_path, stage):
    done = run_cli("train", *RUN[:3], "trainer.epochs=3", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    info = read_run(run_dir)
    info["status"] = "running"
    if stage == "recorded before a knob existed":
        del info["config"]["trainer"]["checkpoint_seconds"]
    (run_dir / "run.json").write_text(json.dumps(info))
    (run_dir / "model.keras").unlink()
    if stage == "before the first epoch":
        for item in (run_dir / "checkpoints").iterdir():
            item.unlink()
    result = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = read_run(run_dir)
    assert info["status"] == "completed" and info["epochs_run"] == 3 and (run_dir / "model.keras").is_file()
    assert info["resumes"][0]["after_epoch"] == (0 if stage == "before the first epoch" else 3)
    assert _epochs(run_dir) == [1, 2, 3] and not (tmp_path / ".attempts").exists()


@pytest.mark.parametrize("args, kill_after, total", [
    (["experiment=dcgan", "data.count=256", "experiment.image_size=16", "model.width=8", "trainer.epochs=12",
      "model.average=0.9"], 4, 12),
    (["experiment=classifier", "model=mobilenet_v2", "model.weights=none", "model.alpha=0.35",
      "experiment.image_size=32", "model.fine_tune_layers=10", "model.fine_tune_epochs=4", "trainer.epochs=4",
      "trainer.early_stopping.enabled=false"], 6, 8),
], ids=["dcgan with two optimizers, its film and its weights' average", "classifier killed in its fine-tuning phase"])
def test_experiments_with_their_own_fit_resume(tmp_path, args, kill_after, total):
    run_dir = tmp_path / "run"
    process = start_cli(["train", *args, "trainer.progress=none", "trainer.checkpoint_seconds=0",
                                 f"hydra.run.dir={run_dir}"], tmp_path)
    reached = _wait_for(lambda: (run_dir / "metrics.csv").is_file() and len(_epochs(run_dir)) >= kill_after,
                        process, timeout=300)
    assert reached, "the run ended before it could be killed"
    kill_group(process)
    saved = _checkpoint_epoch(run_dir)
    assert saved >= kill_after - 1
    resumed = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    info = read_run(run_dir)
    assert info["status"] == "completed" and info["epochs_run"] == total
    assert info["resumes"][0]["after_epoch"] == saved and _epochs(run_dir) == list(range(1, total + 1))
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    if "experiment=dcgan" in args:
        film = json.loads((run_dir / "samples" / "film" / "film.json").read_text())["diversity"]
        assert len(film) == total and len(list((run_dir / "samples" / "film").glob("epoch_*.png"))) == total
    else:
        assert state["extra"] == {"fine_tune_from": 4}, "the second phase knows where it began"


def test_sigterm_records_the_run_as_interrupted_and_it_resumes(tmp_path):
    """A scheduler's or a container's SIGTERM: the run stops like Ctrl-C, run.json says
    'interrupted' (not 'running'), the command exits 143 in one line, and --resume finishes it
    — tracked in MLflow, as the same MLflow run, killed and then finished."""
    import os
    import signal

    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    process = start_cli(["train", *RUN, "tracking=mlflow", f"hydra.run.dir={run_dir}"], tmp_path, subprocess.PIPE)
    assert _wait_for(lambda: _checkpoint_epoch(run_dir) >= 2, process), "it trained a checkpoint's worth"
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("tinkerflow: terminated (SIGTERM)"), stderr[-500:]
    info = read_run(run_dir)
    assert info["status"] == "interrupted" and info["error"]["type"] == "Terminated", info.get("error")
    tracked = info["tracking"]["mlflow"]
    store = MlflowClient(tracked["uri"])
    assert store.get_run(tracked["run_id"]).info.status == "KILLED"
    done = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_run(run_dir)["status"] == "completed" and _epochs(run_dir) == list(range(1, 121))
    [resumed] = store.search_runs([tracked["experiment_id"]])
    assert resumed.info.run_id == tracked["run_id"] and resumed.info.status == "FINISHED", "the same MLflow run"
    assert {m.step for m in store.get_metric_history(resumed.info.run_id, "loss")} == set(range(120))


def test_a_failed_run_reports_the_error_that_stopped_it_even_when_run_json_cannot_be_written(tmp_path, monkeypatch,
                                                                                            capsys):
    """A full disk: the model's save fails (ENOSPC), and so does writing run.json's failure
    (EIO here, to tell the two apart). The command reports the save's error in one line."""
    import errno

    from tinkerflow.core import cli, runner
    from tinkerflow.core.rundir import Run

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_update = Run.update_info

    def update_unless_failed(self, **fields):
        if fields.get("status") == "failed":
            raise OSError(errno.EIO, "Input/output error")
        return real_update(self, **fields)

    monkeypatch.setattr(runner, "_save_model", full_disk)
    monkeypatch.setattr(Run, "update_info", update_unless_failed)
    code = cli.main(["train", f"paths.runs={tmp_path}", "trainer.progress=none", "experiment=addition", "debug=smoke"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 1 and len(errors) == 1 and "No space left on device" in errors[0], errors
