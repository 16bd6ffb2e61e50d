"""Tracking: what MLflow and TensorBoard hold of a run, read back as their users read it
(MLflow's client, TensorBoard's own event reader) and compared with the run folder."""

from __future__ import annotations

import csv
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import read_run, run_cli, train_in_process  # noqa: E402


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A smoke addition run tracked by MLflow (the default sqlite store) and TensorBoard at once,
    exported to TFLite float32 right after training."""
    root = tmp_path_factory.mktemp("tracked")
    run_dir = train_in_process(root / "runs", "experiment=addition", "debug=smoke", "tracking=both", "export=tflite",
                               "export.variants=[float32]")
    return root, run_dir


def epochs(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_mlflow_holds_the_config_every_epoch_the_tags_and_the_files(tracked):
    from mlflow.tracking import MlflowClient

    from tinkerflow.plugins.tracking.flat import flat_config

    root, run_dir = tracked
    info = read_run(run_dir)
    kept = info["tracking"]["mlflow"]
    store = (root / "runs" / "mlflow.db").resolve()
    assert kept["uri"] == f"sqlite:///{store}" and store.is_file(), "one absolute sqlite file under paths.runs"
    client = MlflowClient(kept["uri"])
    [found] = client.search_runs([kept["experiment_id"]])
    assert found.info.run_id == kept["run_id"] and found.info.status == "FINISHED"
    experiment = client.get_experiment(kept["experiment_id"])
    assert experiment.name == "addition"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development", "the UI opens its runs table"

    params = found.data.params
    assert params["trainer.epochs"] == str(info["config"]["trainer"]["epochs"])
    assert params["experiment.samples"] == "200", "the smoke size the run trained with"
    assert set(params) == set(flat_config(info["config"])), "every config key, as overrides name it"

    rows = epochs(run_dir)
    for name in ("loss", "val_loss"):
        history = sorted(client.get_metric_history(found.info.run_id, name), key=lambda m: m.step)
        assert [m.step for m in history if m.step < len(rows)] == list(range(len(rows))), name
        assert [m.value for m in history][:len(rows)] == pytest.approx([float(r[name]) for r in rows], rel=1e-6)
    for name, value in info["metrics"].items():
        assert found.data.metrics[name] == pytest.approx(value), name

    tags = found.data.tags
    assert tags["tinkerflow.experiment"] == "addition" and tags["tinkerflow.status"] == "completed"
    assert tags["tinkerflow.run_folder"] == str(run_dir.resolve())
    assert tags["tinkerflow.plugin"] == "tinkerflow.plugins.addition.experiment"
    assert tags["tinkerflow.version.tensorflow"] == info["versions"]["tensorflow"]
    assert tags["tinkerflow.overrides"] == " ".join(info["overrides"])
    if (info.get("git") or {}).get("sha"):
        assert tags["mlflow.source.git.commit"] == info["git"]["sha"]

    files = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.csv", "run.json", "run.log", "config", "samples"} <= files, files
    samples = {Path(a.path).name for a in client.list_artifacts(found.info.run_id, "samples")}
    assert samples == {p.name for p in (run_dir / "samples").iterdir()}
    assert client.get_experiment(kept["experiment_id"]).artifact_location == (root / "runs" / "mlartifacts").resolve(
        ).as_uri(), "artefacts beside the store, not in the working folder"
    assert not (Path.cwd() / "mlruns").exists() and not (Path.cwd() / "mlartifacts").exists()


def test_tensorboard_holds_every_epoch_and_the_run_as_hyperparameters(tracked):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run_dir = tracked
    rows = epochs(run_dir)
    for folder, name, column in (("train", "epoch_loss", "loss"), ("validation", "epoch_loss", "val_loss")):
        events = EventAccumulator(str(run_dir / "tensorboard" / folder), size_guidance={"tensors": 0}).Reload()
        written = events.Tensors(name)
        assert [e.step for e in written] == list(range(len(rows))), (folder, name)
        values = [float(tf.make_ndarray(e.tensor_proto)) for e in written]
        assert values == pytest.approx([float(r[column]) for r in rows], rel=1e-5), (folder, name)
    summary = EventAccumulator(str(run_dir / "tensorboard" / "summary"), size_guidance={"tensors": 0}).Reload()
    assert summary.PluginTagToContent("hparams"), "the config as hyperparameters, for the HParams tab"
    info = read_run(run_dir)
    for name, value in info["metrics"].items():
        [event] = summary.Tensors(f"final/{name}")
        assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(value), name


def artefacts(client, run_id: str, folder: str) -> set[str]:
    return {Path(a.path).name for a in client.list_artifacts(run_id, folder)}


def test_exports_are_logged_to_the_run_then_and_later(tracked):
    from mlflow.tracking import MlflowClient

    root, run_dir = tracked
    kept = read_run(run_dir)["tracking"]["mlflow"]
    client = MlflowClient(kept["uri"])
    assert {"export.json", "parity.md", "tflite", "bundle"} <= artefacts(client, kept["run_id"], "export")
    assert artefacts(client, kept["run_id"], "export/tflite/float32") == {
        p.name for p in (run_dir / "export" / "tflite" / "float32").glob("*.tflite")}
    parity = client.download_artifacts(kept["run_id"], "export/parity.md", str(root))
    assert "| tflite | float32 | passed |" in Path(parity).read_text()
    assert "golden.json" in artefacts(client, kept["run_id"], "export/bundle")

    later = run_cli("export", str(run_dir), "--format", "tflite", "--quantize", "float16", cwd=root)
    assert later.returncode == 0, later.stderr[-2000:]
    assert artefacts(client, kept["run_id"], "export/tflite/float16"), "an export from the command line, later"


def test_a_store_only_the_run_folder_names_is_never_contacted(tracked, tmp_path):
    """A run folder from elsewhere is data: its run.json naming a server does not make a later
    export connect to it."""
    import json
    import shutil

    _, run_dir = tracked
    foreign = tmp_path / "elsewhere" / "run"
    shutil.copytree(run_dir, foreign, ignore=shutil.ignore_patterns(".lock", "tensorboard"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        info = json.loads((foreign / "run.json").read_text())
        info["tracking"]["mlflow"]["uri"] = uri
        (foreign / "run.json").write_text(json.dumps(info))
        done = run_cli("export", str(foreign), "--format", "tflite", "--quantize", "float32", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        notes = [line for line in done.stderr.splitlines() if line.startswith("tracking:")]
        assert len(notes) == 1 and "mlflow could not record everything of the run (latest: the export is not " \
                                   f"logged to {uri}, the store run.json names" in notes[0], done.stderr[-2000:]
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_model_cards_link_to_the_tracked_run_only_when_asked_and_only_over_http(tracked, tmp_path):
    import json
    import shutil

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.web_export import build_site

    _, run_dir = tracked
    copy = tmp_path / "runs" / "addition" / "tracked"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock", "tensorboard"))
    info = json.loads((copy / "run.json").read_text())
    page = "https://mlflow.team.internal/#/experiments/3/runs/0123456789abcdef0123456789abcdef"
    info["tracking"]["mlflow"]["url"] = page
    info["tracking"]["evil"] = {"url": "javascript:alert(1)"}
    info["tracking"]["sneaky"] = {"url": 'http://h.internal/"><script>alert(2)</script>'}
    info["tracking"]["odd"] = {"url": ["http://not.a.string"]}
    (copy / "run.json").write_text(json.dumps(info))

    plain = build_site([copy], tmp_path / "plain", make_plugin_manager())
    text = (tmp_path / "plain" / "models" / plain.pages[0]["slug"] / "index.html").read_text()
    assert "Tracked run" not in text and "mlflow.team.internal" not in text, "no server address unless asked"

    linked = build_site([copy], tmp_path / "linked", make_plugin_manager(), tracking_links=True)
    text = (tmp_path / "linked" / "models" / linked.pages[0]["slug"] / "index.html").read_text()
    assert f'<li>mlflow: <a href="{page}" rel="noopener" target="_blank">{page}</a></li>' in text
    assert "javascript:" not in text and "not.a.string" not in text
    assert "<script>alert(2)" not in text and "&quot;&gt;&lt;script&gt;alert(2)" in text


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_that_does_not_answer_leaves_the_run_complete_and_says_so(tmp_path):
    uri = f"http://127.0.0.1:{unused_port()}"
    done = run_cli("train", "debug=smoke", "tracking=mlflow", f"tracking.uri={uri}", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [line for line in done.stderr.splitlines() if line.startswith("tracking:")]
    assert len(notes) == 1 and f"mlflow could not record everything of the run (first: could not find the " \
                                f"experiment at {uri}" in notes[0], done.stderr[-2000:]
    info = read_run(tmp_path / "run")
    assert info["status"] == "completed" and info["metrics"]
    assert info["tracking"]["mlflow"]["problems"] == 1, "one failure; nothing more was tried for the run"
    assert f"[WARNING] mlflow could not find the experiment at {uri}" in (tmp_path / "run" / "run.log").read_text()

    strict = run_cli("train", "debug=smoke", "tracking=mlflow", f"tracking.uri={uri}", "hydra.run.dir=strict",
                     "--strict-tracking", cwd=tmp_path)
    errors = [line for line in strict.stderr.splitlines() if ": error: " in line]
    assert strict.returncode != 0 and len(errors) == 1, strict.stderr[-2000:]
    assert f"tracking: mlflow could not find the experiment at {uri}" in errors[0]
    assert read_run(tmp_path / "strict")["status"] == "failed"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``mlflow server`` on loopback, its own sqlite store and artefact folder."""
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{unused_port()}"
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                                    "--port", url.rsplit(":", 1)[1], "--workers", "1",
                                    "--backend-store-uri", f"sqlite:///{folder / 'store.db'}",
                                    "--artifacts-destination", str(folder / "artifacts")],
                                   env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:  # until it answers, or exits
            assert process.poll() is None, (folder / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def children_of(client, parent):
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def test_a_joblib_sweep_on_a_server_is_one_parent_with_a_child_per_job(server, tmp_path):
    from mlflow.tracking import MlflowClient

    done = run_cli("train", "-m", "debug=smoke", "experiment.hidden=1,2", "tracking=mlflow", f"tracking.uri={server}",
                   "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not [line for line in done.stderr.splitlines() if line.startswith("tracking:")], done.stderr[-2000:]
    client = MlflowClient(server)
    [parent] = client.search_runs([client.get_experiment_by_name("addition").experiment_id],
                                  "tags.`tinkerflow.sweep` = 'true'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_completed"] == 2
    assert parent.data.tags["tinkerflow.sweep_folder"] == str((tmp_path / "sweep").resolve())
    assert parent.data.params["sweep.experiment.hidden"] == "1,2"
    children = {c.data.params["experiment.hidden"]: c for c in children_of(client, parent)}
    assert set(children) == {"1", "2"}
    for job, hidden in (("0", "1"), ("1", "2")):
        child, info = children[hidden], read_run(tmp_path / "sweep" / job)
        assert child.info.run_id == info["tracking"]["mlflow"]["run_id"] and child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "loss")) == len(epochs(tmp_path / "sweep" / job))
        assert {"metrics.csv", "run.json", "samples"} <= {a.path for a in client.list_artifacts(child.info.run_id)}
        assert info["tracking"]["mlflow"]["uri"] == server
        assert info["tracking"]["mlflow"]["url"] == f"{server}/#/experiments/{child.info.experiment_id}/runs/" \
                                                    f"{child.info.run_id}", "the run's page, for tinkerflow web"


def test_a_jax_run_exported_in_a_tensorflow_process_logs_its_export_to_the_server(server, tmp_path):
    from mlflow.tracking import MlflowClient

    done = run_cli("train", "debug=smoke", "trainer.backend=jax", "tracking=mlflow", f"tracking.uri={server}",
                   "export=tflite", "export.variants=[float32]", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    kept = read_run(tmp_path / "run")["tracking"]["mlflow"]
    assert "problem" not in kept, kept
    assert artefacts(MlflowClient(server), kept["run_id"], "export/tflite/float32") == {
        p.name for p in (tmp_path / "run" / "export" / "tflite" / "float32").glob("*.tflite")}


# Runs tinkerflow with an audit hook that writes every name looked up and every address
# connected to (Python's own socket audit events) into the file named by argv[1].
WATCHED = """
import sys
seen = open(sys.argv[1], "w")

def hook(event, args):
    if event == "socket.getaddrinfo":
        seen.write(f"lookup {args[0]}\\n")
    elif event == "socket.connect":
        seen.write(f"connect {args[1]!r}\\n")
    seen.flush()

sys.addaudithook(hook)
from tinkerflow.core.cli import run
sys.argv = ["tinkerflow", *sys.argv[2:]]
run()
"""


def test_nothing_leaves_the_machine_from_a_tracked_run(tmp_path):
    """Outside CI and pytest (MLflow keeps its usage telemetry off where CI or PYTEST_CURRENT_TEST
    is set), a run tracked by MLflow and TensorBoard looks up no host and connects to nothing
    but this machine."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK") and not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-c", WATCHED, str(tmp_path / "seen.txt"), "train", "debug=smoke",
                           "tracking=both", "export=tflite", "export.variants=[float32]", "hydra.run.dir=run"],
                          cwd=tmp_path, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_run(tmp_path / "run")["tracking"]["mlflow"]["run_id"]
    seen = (tmp_path / "seen.txt").read_text().splitlines()
    outside = [line for line in seen if not (line.startswith(("lookup localhost", "lookup 127.0.0.1", "connect '/"))
                                             or "'127.0.0.1'" in line or "connect ('::1'" in line)]
    assert not outside, outside


def test_two_sweeps_logging_at_once_into_one_sqlite_store_lose_nothing(tmp_path):
    import subprocess

    from mlflow.tracking import MlflowClient

    from conftest import start_cli

    store = f"sqlite:///{tmp_path / 'shared.db'}"
    sweeps = {seed: start_cli(["train", "-m", "debug=smoke", "experiment.hidden=1,2", f"seed={seed}", "tracking=mlflow",
                               f"tracking.uri={store}", f"hydra.sweep.dir=sweep{seed}"], tmp_path, subprocess.PIPE)
              for seed in (1, 2)}
    for process in sweeps.values():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        assert not [line for line in stderr.splitlines() if line.startswith("tracking:")], stderr[-2000:]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("addition").experiment_id
    parents = client.search_runs([experiment], "tags.`tinkerflow.sweep` = 'true'")
    assert len(parents) == 2
    for parent in parents:
        folder = Path(parent.data.tags["tinkerflow.sweep_folder"])
        children = children_of(client, parent)
        assert {c.data.tags["tinkerflow.run_folder"] for c in children} == {str(folder / "0"), str(folder / "1")}
        for child in children:
            rows = epochs(Path(child.data.tags["tinkerflow.run_folder"]))
            assert len(client.get_metric_history(child.info.run_id, "loss")) == len(rows), "every epoch, none lost"
            assert {"metrics.csv", "run.json", "samples"} <= {a.path for a in client.list_artifacts(child.info.run_id)}
