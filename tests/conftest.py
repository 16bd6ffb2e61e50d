"""Shared fixtures: the real config tree, the real plugin registry, the CLI in and out of process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINKERFLOW = str(BIN / "tinkerflow")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_configure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller, before any worker starts
        import shutil

        shutil.rmtree(REPO / "test-artifacts" / "timings", ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    benchmarks_on = config.getoption("benchmark_enable", False) or config.getoption("benchmark_only", False)
    skip_slow = pytest.mark.skip(reason="slow: opt in with --run-slow")
    skip_bench = pytest.mark.skip(reason="benchmark: opt in with --benchmark-enable (make bench)")
    for item in items:
        if "benchmarks" in item.path.parts and not benchmarks_on:
            item.add_marker(skip_bench)
        elif "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """One line per test in test-artifacts/timings/WORKER.tsv: when it started, its wall time
    (setup, call and teardown), the CPU it and its subprocesses used, and the worker's memory
    and threads after it: where CI's time goes, and which worker state slows a test."""
    import gc
    import resource
    import threading
    import time

    folder = REPO / "test-artifacts" / "timings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.tsv"
    started, wall = time.time(), time.perf_counter()
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    yield
    me_after, children_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (me_after.ru_utime + me_after.ru_stime) - (me.ru_utime + me.ru_stime)
    cpu_children = ((children_after.ru_utime + children_after.ru_stime)
                    - (children.ru_utime + children.ru_stime))
    fresh = not path.exists()
    with path.open("a") as out:
        if fresh:
            out.write("started\twall_s\tcpu_s\tchildren_cpu_s\tmax_rss_mb\tthreads\tgc_full\ttest\n")
        out.write(f"{started:.1f}\t{time.perf_counter() - wall:.2f}\t{cpu:.2f}\t{cpu_children:.2f}\t"
                  f"{me_after.ru_maxrss // 1024}\t{threading.active_count()}\t{gc.get_stats()[2]['collections']}\t"
                  f"{item.nodeid}\n")


@pytest.fixture(scope="session")
def registry():
    from tinkerflow.core.config import register_schemas
    from tinkerflow.core.plugins import make_plugin_manager

    reg = make_plugin_manager()
    register_schemas({name: entry.cls for name, entry in reg.experiments.items()})
    return reg


@pytest.fixture(autouse=True, scope="session")
def _absl_writes_to_the_real_stderr():
    """absl's logging handler (TensorFlow imports it) keeps the stderr it was created with and
    closes it whenever logging is reconfigured — Hydra does at every in-process job — unless
    it is the current ``sys.stderr``. Created while pytest captured the output, it would
    close pytest's capture file in the first test that trains in process under ``capsys``,
    breaking every later test. The real stderr is never closed."""
    from absl import logging as absl_logging

    absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)


@pytest.fixture(autouse=True, scope="session")
def _keras_on_tensorflow():
    """Keras runs on TensorFlow in the test processes: what trains in process and then
    exports there needs it, and ``trainer.backend=auto`` keeps to the backend Keras already
    runs on (else addition's first in-process run would start it on JAX). The variable is put
    back, so the commands the tests start choose their own backend."""
    before = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        from tinkerflow.core.tf_quiet import import_keras

        import_keras()
    finally:
        if before is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = before


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for key in ("TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD", "TINKERFLOW_PLUGINS", "TINKERFLOW_TRACE_PLUGINS"):
        monkeypatch.delenv(key, raising=False)


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed ``tinkerflow`` command in a subprocess, as a user would."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None) if not (env and "HYDRA_FULL_ERROR" in env) else None
    return subprocess.run([TINKERFLOW, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def installed_plugin(folder: Path, name: str, source: str, entry_point: str | None = None) -> None:
    """A plugin module ``name`` in ``folder`` with a ``tinkerflow`` entry point (named
    ``entry_point``, default ``name``), as pip installs one: found through PYTHONPATH."""
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tinkerflow]\n{entry_point or name} = {name}\n")
    (folder / f"{name}.py").write_text(source)


def run_readme_python(bundle: Path) -> list[subprocess.CompletedProcess]:
    """Run every ```python block of ``bundle``'s README.md as it is, in the bundle folder."""
    blocks, block = [], None
    for line in (bundle / "README.md").read_text().splitlines():
        if block is None and line.strip() == "```python":
            block = []
        elif block is not None and line.strip() == "```":
            blocks.append("\n".join(block))
            block = None
        elif block is not None:
            block.append(line)
    assert blocks, f"{bundle / 'README.md'} has no python block"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return [subprocess.run([sys.executable, "-c", code], cwd=bundle, env=env, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL) for code in blocks]


def start_cli(args: list[str], cwd: Path, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """Start the installed ``tinkerflow`` command in its own process group (see :func:`kill_group`)."""
    return subprocess.Popen([TINKERFLOW, *args], cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                            start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started by :func:`start_cli` and everything it started."""
    import signal

    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def read_run(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def only_run_dir(runs_root: Path, experiment: str) -> Path:
    found = [p.parent for p in (runs_root / experiment).glob("*/run.json")]
    assert len(found) == 1, f"expected one run under {runs_root / experiment}, found {found}"
    return found[0]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``folder``: proof that nothing was touched."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def train_in_process(runs_root: Path, *overrides: str) -> Path:
    """Train through the real CLI entry point in this process (on TensorFlow, as Keras runs
    in the test processes); returns the run directory."""
    from tinkerflow.core import cli

    code = cli.main(["train", f"paths.runs={runs_root}", "trainer.progress=none", *overrides])
    assert code == 0, f"tinkerflow train {' '.join(overrides)} exited {code}"
    runs = sorted(p.parent for p in Path(runs_root).glob("*/*/run.json"))
    return runs[-1]


def one_unit_model():
    """The smallest compiled Keras model (one input, one Dense unit) for throwaway experiments."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model
