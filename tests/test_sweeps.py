"""Sweeps that survive and scale: resume, the Ray launcher on a real local cluster, Optuna."""

from __future__ import annotations

import os
import socket
import subprocess
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import BIN, one_unit_model, read_run, run_cli
from tinkerflow.core import Experiment, ExperimentConfig, Splits, hookimpl

SMOKE = ["experiment.samples=200", "experiment.test_samples=50", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]


# -- resume: failed jobs run again, completed ones are kept ---------------------------------

FITS: list[int] = []


@dataclass
class FlakyConfig(ExperimentConfig):
    value: int = 0


class Flaky(Experiment):
    """Fails for the values listed in $FLAKY_FAIL; counts its fits."""

    name = "flaky"
    Config = FlakyConfig

    def load_data(self):
        import numpy as np

        x = np.full((16, 1), float(self.config.value), "float32")
        return Splits(train=(x, x), validation=(x, x))

    def build_model(self):
        return one_unit_model()

    def fit(self, model, data, callbacks):
        FITS.append(self.config.value)
        if str(self.config.value) in os.environ.get("FLAKY_FAIL", "").split(","):
            raise RuntimeError(f"value {self.config.value} is flaky")
        return super().fit(model, data, callbacks)


@pytest.fixture
def flaky_cli(monkeypatch):
    from tinkerflow.core import cli
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin

    plugin = types.ModuleType("flaky_plugin")
    plugin.register_experiments = hookimpl(lambda register: register(Flaky))
    registry = make_plugin_manager({})
    register_plugin(registry, plugin, "flaky")
    monkeypatch.setattr(cli, "_registry", lambda: registry)
    FITS.clear()
    return cli


def test_resume_reruns_only_failed_jobs_and_keeps_their_record(flaky_cli, tmp_path, monkeypatch, capsys):
    sweep_args = ["train", "-m", "experiment=flaky", "experiment.value=1,2,3", f"paths.runs={tmp_path}",
                  "trainer.epochs=2", "trainer.progress=none", "trainer.checkpoint_seconds=0"]
    monkeypatch.setenv("FLAKY_FAIL", "2")
    assert flaky_cli.main(sweep_args) == 1, "a failed job makes the sweep exit non-zero"
    assert FITS == [1, 2, 3], "the failing job did not stop the others"
    (sweep,) = (tmp_path / "flaky" / "multirun").iterdir()
    assert [read_run(sweep / j)["status"] for j in "012"] == ["completed", "failed", "completed"]
    kept = {j: (sweep / j / "model.keras").read_bytes() for j in "02"}
    assert "1 failed" in capsys.readouterr().err

    monkeypatch.delenv("FLAKY_FAIL")
    FITS.clear()
    assert flaky_cli.main([*sweep_args, "--resume", "last"]) == 0
    assert FITS == [2], "only the failed job trains again"
    assert [read_run(sweep / j)["status"] for j in "012"] == ["completed"] * 3
    assert all((sweep / j / "model.keras").read_bytes() == kept[j] for j in "02")
    (resume,) = read_run(sweep / "1")["resumes"]
    assert resume["was"] == "failed" and resume["error"] == "value 2 is flaky", "the failure stays on record"
    assert not (sweep / ".attempts").exists()
    assert "3 completed, 0 failed" in capsys.readouterr().err

    FITS.clear()
    changed = [a.replace("trainer.epochs=2", "trainer.epochs=3") for a in sweep_args]
    assert flaky_cli.main([*changed, "--resume", str(sweep)]) == 0
    assert FITS == [1, 2, 3], "a changed config is not the same job: all run again"
    assert len(list((sweep / ".attempts").iterdir())) == 3, "each earlier attempt is set aside, not deleted"


def test_resume_errors_are_one_line(tmp_path):
    for args, expected in [
        (["--resume", str(tmp_path)], "is not a sweep folder"),
        (["--resume", "last"], "no earlier sweep"),
    ]:
        result = run_cli("train", "-m", *SMOKE, "experiment.hidden=1,2", *args, cwd=tmp_path)
        assert result.returncode == 2 and expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
    single = run_cli("train", "--resume", "last", cwd=tmp_path)
    assert single.returncode == 2 and "no run under 'runs/'" in single.stderr


# -- Ray: a real local head on 127.0.0.1 -----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=180)


def tracked_sweep(runs: Path, jobs: int):
    """The MLflow parent run of the one sweep in the default store under ``runs``, and its children."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{(runs / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("addition").experiment_id
    [parent] = client.search_runs([experiment], "tags.`tinkerflow.sweep` = 'true'")
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == jobs and parent.info.status == "FINISHED", (parent, children)
    assert parent.data.metrics["jobs_completed"] == jobs
    return client, parent, children


def test_ray_launcher_runs_a_sweep_on_a_local_cluster(ray_head, tmp_path):
    result = run_cli("train", "-m", "experiment.hidden=1,2", *SMOKE, "trainer.backend=jax", "hydra/launcher=ray",
                     f"hydra.launcher.ray.init.address={ray_head}", "tracking=mlflow", cwd=tmp_path,
                     env={"RAY_USAGE_STATS_ENABLED": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "multirun: 2 completed, 0 failed" in result.stderr
    assert "Connected to Ray cluster" in result.stderr and "(_run_job pid=" in result.stdout + result.stderr
    (sweep,) = (tmp_path / "runs" / "addition" / "multirun").iterdir()
    launcher = yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["launcher"]
    assert "RayLauncher" in launcher["_target_"]
    for job, hidden in (("0", 1), ("1", 2)):
        info = read_run(sweep / job)
        assert info["status"] == "completed" and info["config"]["experiment"]["hidden"] == hidden
        assert info["backend"] == "jax", "the driver's backend reaches the Ray workers"
        assert info["threads"]["intra_op"] == 1, "one CPU per Ray task, one thread per job"
    client, _, children = tracked_sweep(tmp_path / "runs", 2)  # the workers log to the driver's absolute store
    assert {c.data.params["experiment.hidden"] for c in children} == {"1", "2"}
    assert {c.info.run_id for c in children} == {read_run(sweep / j)["tracking"]["mlflow"]["run_id"] for j in "01"}


# -- Optuna: hyperparameter search on the experiment's objective ------------------------------

def test_optuna_maximises_the_experiment_objective(tmp_path):
    result = run_cli("train", "-m", *SMOKE, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
                     "hydra.sweeper.sampler.seed=1", "experiment.hidden=choice(1,2,4)",
                     "trainer.learning_rate=tag(log, interval(0.001, 0.1))", "tracking=mlflow", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Directions: ['maximize']" in result.stdout + result.stderr
    (sweep,) = (tmp_path / "runs" / "addition" / "multirun").iterdir()
    values = [read_run(sweep / str(j))["metrics"]["best_val_rounded_accuracy"] for j in range(3)]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(values))
    assert set(best["best_params"]) == {"experiment.hidden", "trainer.learning_rate"}
    _, _, trials = tracked_sweep(tmp_path / "runs", 3)  # each trial a child, with its objective
    assert sorted(t.data.metrics["best_val_rounded_accuracy"] for t in trials) == pytest.approx(sorted(values))


def test_an_optuna_search_in_a_sqlite_file_continues_where_it_stopped(tmp_path):
    import optuna

    search = [*SMOKE, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.storage=sqlite:///study.db",
              "hydra.sweeper.study_name=adding", "experiment.hidden=choice(1,2,4)"]
    for part in ("first", "second"):
        result = run_cli("train", "-m", *search, f"hydra.sweep.dir=runs/{part}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="adding", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4, \
        "the second search adds two trials"
    jobs = [read_run(tmp_path / "runs" / part / str(j))["metrics"]["best_val_rounded_accuracy"]
            for part in ("first", "second") for j in range(2)]
    assert [t.value for t in study.trials] == pytest.approx(jobs)
    best = yaml.safe_load((tmp_path / "runs" / "second" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(jobs)), "the best of the whole study, both searches"


def test_optuna_direction_against_the_objective_is_refused(tmp_path):
    result = run_cli("train", "-m", *SMOKE, "hydra/sweeper=optuna", "hydra.sweeper.direction=minimize",
                     "experiment.hidden=choice(1,2)", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "expected hydra.sweeper.direction=maximize" in result.stderr


# -- presets: checked like the command line, and listed before they run ----------------------

def _preset(folder, name: str, params: dict) -> str:
    """A sweep preset ``+sweep=NAME`` in ``folder`` (put on Hydra's search path), for addition."""
    (folder / "sweep").mkdir(parents=True, exist_ok=True)
    (folder / "sweep" / f"{name}.yaml").write_text("# @package _global_\n" + yaml.safe_dump(
        {"defaults": [{"override /experiment": "addition"}], "hydra": {"sweeper": {"params": params}}}))
    return f"hydra.searchpath=[file://{folder}]"


@pytest.mark.parametrize("params, message", [
    ({"experiment.hiden": "1,2", "seed": "0,1"},
     "hydra.sweeper.params sweeps 'experiment.hiden', which the config does not have; did you mean "
     "experiment.hidden?"),
    ({"trainer.epoch": "1,2"}, "sweeps 'trainer.epoch', which the config does not have; did you mean trainer.epochs?"),
    ({"experiment.hidden": "1,two"}, "config key 'experiment.hidden': Value 'two' of type 'str' could not be "
                                     "converted to Integer"),
], ids=["misspelt key", "misspelt trainer key", "a value of the wrong type in its second job"])
def test_a_presets_sweep_is_checked_before_any_folder_exists(tmp_path, params, message):
    search = _preset(tmp_path / "presets", "mistake", {**params})
    (tmp_path / "work").mkdir()
    result = run_cli("train", "-m", search, "+sweep=mistake", cwd=tmp_path / "work")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not list((tmp_path / "work").iterdir()), "no run or sweep folder is made"


def test_a_dry_run_lists_every_job_of_a_preset_and_the_command_line_and_writes_nothing(tmp_path):
    listed = run_cli("train", "-m", "+sweep=addition_study", "trainer.epochs=3", "--dry-run", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("45 jobs into runs/addition/multirun/") and lines[0].endswith(
        "(nothing was written); every job: +sweep=addition_study trainer.epochs=3"), lines[0]
    assert lines[1].split() == ["0", "experiment.hidden=1", "experiment.max_sum=16", "seed=0"]
    assert lines[-1].split() == ["44", "experiment.hidden=16", "experiment.max_sum=65536", "seed=2"]
    assert len(lines) == 46 and len({line.split(None, 1)[1] for line in lines[1:]}) == 45
    search = run_cli("train", "-m", "+sweep=addition_search", "--dry-run", cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    assert search.stdout.startswith("the sweeper chooses 16 trials into runs/addition/multirun/")
    assert search.stdout.rstrip().endswith("over experiment.hidden: choice(1, 2, 4, 8, 16); "
                                           "trainer.learning_rate: tag(log, interval(0.0003, 0.05))")
    single = run_cli("train", "experiment=addition", "experiment.hidden=3", "--dry-run", cwd=tmp_path)
    assert single.returncode == 0 and single.stdout.startswith("1 run into runs/addition/"), single.stderr
    assert single.stdout.rstrip().endswith("(nothing was written): experiment=addition experiment.hidden=3")
    wrong = run_cli("train", "-m", "+sweep=addition_study", "experiment.hidden=1,x", "--dry-run", cwd=tmp_path)
    assert wrong.returncode == 2 and "could not be converted to Integer" in wrong.stderr, wrong.stderr
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"
