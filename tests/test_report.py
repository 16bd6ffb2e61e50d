"""Sweeps: the addition study preset and `tinkerflow report`."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import run_cli
from tinkerflow.core.config import compose_config

SMOKE = ["experiment.samples=200", "experiment.test_samples=50", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]


def test_addition_study_preset_is_the_protocol(registry):
    cfg = compose_config(["+sweep=addition_study"])
    params = dict(cfg.hydra.sweeper.params)
    assert params == {"experiment.hidden": "1,2,4,8,16", "experiment.max_sum": "16,256,65536", "seed": "0,1,2"}
    assert cfg.trainer.epochs == 1000 and cfg.trainer.early_stopping.enabled
    assert cfg.experiment.samples == 10000 and cfg.experiment.validation_split == 0.2


def test_addition_post_preset_is_the_same_study_trained_as_keras_did_by_default(registry):
    study, post = compose_config(["+sweep=addition_study"]), compose_config(["+sweep=addition_post"])
    assert dict(post.hydra.sweeper.params) == dict(study.hydra.sweeper.params)
    assert not post.experiment.scale_inputs and study.experiment.scale_inputs
    assert (post.trainer.optimizer, post.trainer.learning_rate, post.trainer.batch_size) == ("adam", 0.001, 32)
    assert post.trainer.early_stopping.patience == 0 and not post.trainer.early_stopping.restore_best_weights
    assert not post.trainer.reduce_lr.enabled and post.trainer.epochs == 1000


def test_report_puts_two_sweeps_side_by_side_with_mean_and_spread_over_seeds(tmp_path):
    import numpy as np

    sweeps = {}
    for preset in ("addition_post", "addition_study"):
        done = run_cli("train", "-m", f"+sweep={preset}", "experiment.hidden=1,2", "experiment.max_sum=16", "seed=0,1",
                       "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SMOKE, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        sweeps[preset] = max((tmp_path / "runs" / "addition" / "multirun").iterdir(), key=lambda p: p.stat().st_mtime)
    single = run_cli("report", str(sweeps["addition_post"]), cwd=tmp_path, env={"COLUMNS": "250"})
    assert single.returncode == 0, single.stderr
    assert "## Mean ± standard deviation over seeds" in (sweeps["addition_post"] / "report.md").read_text()
    assert "seeds" in single.stdout, "the terminal shows one row per cell"

    result = run_cli("report", str(sweeps["addition_post"]), str(sweeps["addition_study"]), "--out", "both",
                     cwd=tmp_path, env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "both" / "report.csv").open()))
    assert [r["experiment.hidden"] for r in rows] == ["1", "2"]
    assert rows[0]["addition_post: seeds"] == rows[0]["addition_study: seeds"] == "2"
    for preset in sweeps:
        runs = [json.loads((sweeps[preset] / str(job) / "run.json").read_text()) for job in range(4)]
        values = [r["metrics"]["test_mse"] for r in runs if r["config"]["experiment"]["hidden"] == 1]
        mean, spread = rows[0][f"{preset}: test_mse"].split(" ± ")
        assert float(mean) == pytest.approx(np.mean(values), rel=1e-3)
        assert float(spread) == pytest.approx(np.std(values, ddof=1), rel=0.05)
    markdown = (tmp_path / "both" / "report.md").read_text()
    assert "| experiment.scale_inputs | False | True |" in markdown, "what tells the sweeps apart"
    assert "| trainer.early_stopping.patience | 0 | 30 |" in markdown
    assert (tmp_path / "both" / "error_surfaces.png").read_bytes()[:4] == b"\x89PNG"
    assert "experiment.scale_inputs: addition_post False | addition_study True" in result.stdout

    wrong = run_cli("report", str(sweeps["addition_post"]), str(sweeps["addition_study"]), "--metrics", "bleu",
                    cwd=tmp_path)
    assert wrong.returncode == 2 and "--metrics bleu: not measured by every sweep" in wrong.stderr


def test_report_of_a_sweep_with_finished_failed_and_running_jobs(tmp_path):
    done = run_cli("train", "-m", "experiment.hidden=1,2", *SMOKE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (sweep,) = (tmp_path / "runs" / "addition" / "multirun").iterdir()
    failed = sweep / "1" / "run.json"
    info = json.loads(failed.read_text())
    info.update(status="failed", error={"message": "killed by the test"})
    failed.write_text(json.dumps(info))
    (sweep / "2" / ".hydra").mkdir(parents=True)

    result = run_cli("report", str(sweep), cwd=tmp_path, env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["status"] for r in rows] == ["completed", "failed", "running"]
    assert [r["experiment.hidden"] for r in rows[:2]] == ["1", "2"]
    assert rows[0]["test_accuracy"] != "" and rows[0]["epochs"] == "2"
    markdown = (sweep / "report.md").read_text()
    assert "| job | experiment.hidden | status |" in markdown and "job 1: killed by the test" in markdown
    assert (sweep / "val_loss.png").read_bytes()[:4] == b"\x89PNG"
    for figure in ("error_surfaces.png", "cross_sections.png", "hidden_to_output_weights.png"):
        assert (sweep / figure).read_bytes()[:4] == b"\x89PNG", figure
        assert f"![{figure}]({figure})" in markdown


def test_report_of_something_that_is_not_a_sweep(tmp_path):
    missing = run_cli("report", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "sweep directory" in missing.stderr and missing.stderr.count("\n") == 1
    empty = run_cli("report", str(tmp_path), cwd=tmp_path)
    assert empty.returncode == 2 and "holds no job folders" in empty.stderr


def test_joblib_launcher_runs_jobs_in_parallel_with_split_threads(tmp_path):
    import os

    done = run_cli("train", "-m", "experiment.hidden=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   *SMOKE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "multirun: 2 completed, 0 failed" in done.stderr
    (sweep,) = (tmp_path / "runs" / "addition" / "multirun").iterdir()
    for job in ("0", "1"):
        info = json.loads((sweep / job / "run.json").read_text())
        assert info["status"] == "completed"
        assert info["threads"]["intra_op"] == max(1, (os.cpu_count() or 1) // 2)


def test_report_reads_a_strangers_sweep_as_data(tmp_path):
    """A sweep folder from elsewhere: a pending job whose config is a 679-byte YAML alias bomb
    (a gigabyte and rising at 40 s before), another whose config is not UTF-8, and a folder
    named '²' (a digit to str.isdigit, not to int). The report is written, in bounded memory."""
    import resource
    import subprocess

    from conftest import TINKERFLOW

    sweep = tmp_path / "sweep"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / ".hydra" / "config.yaml").write_text(
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
        + "".join(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]\n" for i in range(1, 9)))
    assert len((sweep / "0" / ".hydra" / "config.yaml").read_bytes()) < 800
    (sweep / "1" / ".hydra").mkdir(parents=True)
    (sweep / "1" / ".hydra" / "config.yaml").write_bytes(b"experiment:\n  hidden: \xff\xfe\n")
    (sweep / "²").mkdir()

    def bounded_memory():  # 3 GB of address space: TensorFlow's import fits, the bomb's expansion does not
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))

    done = subprocess.run([TINKERFLOW, "report", str(sweep)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, preexec_fn=bounded_memory, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    report = (sweep / "report.md").read_text()
    assert "| 0 |" in report and "| 1 |" in report and "²" not in report
