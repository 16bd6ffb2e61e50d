"""Every registered experiment trains end to end with its own smoke overrides."""

from __future__ import annotations

import pytest

from conftest import read_run, train_in_process
from tinkerflow.core.plugins import make_plugin_manager

EXPERIMENTS = sorted(make_plugin_manager().experiments)
pytestmark = pytest.mark.compat


def test_the_builtin_and_example_experiments_are_registered():
    assert {"addition", "sine"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_run(registry, tmp_path, name):
    experiment = registry.experiment(name)
    run_dir = train_in_process(tmp_path, f"experiment={name}", *experiment.smoke_overrides)
    info = read_run(run_dir)
    assert info["status"] == "completed", info.get("error")
    assert info["experiment"] == name
    assert (run_dir / "model.keras").stat().st_size > 0
    assert info["metrics"], "evaluate must report metrics"
    assert 1 <= info["epochs_run"] <= 3
