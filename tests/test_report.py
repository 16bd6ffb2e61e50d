"""Sweeps: the addition study preset and `tinkerflow report`."""

from __future__ import annotations

import csv
import json

from conftest import run_cli
from tinkerflow.core.config import compose_config

SMOKE = ["experiment.samples=200", "experiment.test_samples=50", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]


def test_addition_study_preset_is_the_protocol(registry):
    cfg = compose_config(["+sweep=addition_study"])
    params = dict(cfg.hydra.sweeper.params)
    assert params == {"experiment.hidden": "1,2,4,8,16", "experiment.max_sum": "16,256,65536"}
    assert cfg.trainer.epochs == 1000 and cfg.trainer.early_stopping.enabled
    assert cfg.experiment.samples == 10000 and cfg.experiment.validation_split == 0.2


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
