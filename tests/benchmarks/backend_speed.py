"""Seconds per epoch of the small experiments on their default training path and on each
backend, against a NumPy floor: the same network, data, Adam and batch size in a plain
NumPy loop.

    .venv/bin/python tests/benchmarks/backend_speed.py [--epochs 30]

Each run is a ``tinkerflow train`` subprocess of its own (Keras picks its backend once per
process) with the experiment's default config, early stopping off and the default
checkpoint interval; a fresh ``tinkerflow new`` plugin is written to a temporary folder and
made visible to it by an entry point. Two figures each: the median of ``metrics.csv``'s
per-epoch times (the first, tracing epoch left out: the epoch's training and validation
only), and the whole fit's wall time over the epochs (``run.json``: compile, callbacks and
checkpoints included). The JAX compile cache starts empty, so each experiment's default
(JAX) run compiles and the explicit ``jax`` run after it reads the programs back. Each is
printed with its ratio to that network's NumPy floor,
measured in this run; lyrics and the classifier's simple CNN have no floor here and are
printed as measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


def mlp_floor(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, sizes: list[int], hidden: str,
              output: str, epochs: int, lr: float, out_scale: float = 1.0, seed: int = 0) -> float:
    """Median seconds per epoch of a dense network (``sizes``, ``hidden`` activations, an
    ``output`` of ``linear`` with MSE or ``sigmoid`` with cross-entropy, times ``out_scale``)
    trained with Adam in batches of 32, with a validation pass, in NumPy."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        limit = np.sqrt(6 / (fan_in + fan_out))
        params += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32), np.zeros(fan_out, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-7, 0
    act = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[hidden]
    slope = {"tanh": lambda h: 1 - h * h, "sigmoid": lambda h: h * (1 - h)}[hidden]

    def forward(inputs):
        outs = [inputs]
        for k in range(0, len(params) - 2, 2):
            outs.append(act(outs[-1] @ params[k] + params[k + 1]))
        z = outs[-1] @ params[-2] + params[-1]
        return outs, (1 / (1 + np.exp(-z)) if output == "sigmoid" else z) * out_scale

    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        for begin in range(0, len(x), 32):
            index = order[begin:begin + 32]
            xb, yb = x[index], y[index]
            outs, out = forward(xb)
            delta = (out - yb) / len(xb) if output == "sigmoid" else 2 * (out - yb) / len(xb) * out_scale
            grads = [None] * len(params)
            for k in range(len(params) - 2, -1, -2):
                grads[k], grads[k + 1] = outs[k // 2].T @ delta, delta.sum(0)
                if k:
                    delta = delta @ params[k].T * slope(outs[k // 2])
            step += 1
            for k, g in enumerate(grads):
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                params[k] -= lr * (m[k] / (1 - b1 ** step)) / (np.sqrt(v[k] / (1 - b2 ** step)) + eps)
        float(np.mean((forward(xv)[1] - yv) ** 2))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def addition_floor(epochs: int) -> float:
    """The 2-8-1 addition network on 8,000 pairs (inputs / 256, sigmoid units, output × 256), Adam 0.01."""
    ab = np.random.default_rng(0).integers(0, 129, size=(10_000, 2)).astype(np.float32)
    total = ab.sum(axis=1, keepdims=True)
    return mlp_floor(ab[:8000] / 256, total[:8000], ab[8000:] / 256, total[8000:], [2, 8, 1], "sigmoid", "linear",
                     epochs, 0.01, out_scale=256)


def sine_floor(epochs: int) -> float:
    """The sine example's 1-16-16-1 tanh network on 2,000 points (400 to validate), MSE, Adam 0.01."""
    x = np.random.default_rng(0).uniform(-np.pi, np.pi, (2400, 1)).astype(np.float32)
    y = np.sin(x)
    return mlp_floor(x[:2000], y[:2000], x[2000:], y[2000:], [1, 16, 16, 1], "tanh", "linear", epochs, 0.01)


def new_plugin_floor(epochs: int) -> float:
    """``tinkerflow new``'s noisy XOR: 2-16-1, tanh then sigmoid, cross-entropy, 2,000 points, Adam 0.01."""
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, (2400, 2))
    label = (clean[:, :1] * clean[:, 1:] > 0).astype(np.float32)
    x = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    return mlp_floor(x[:2000], label[:2000], x[2000:], label[2000:], [2, 16, 1], "tanh", "sigmoid", epochs, 0.01)


@dataclass
class Case:
    label: str
    experiment: str
    floor: Callable[[int], float] | None
    backends: tuple[str, ...] = ("auto", "tensorflow", "jax")
    overrides: tuple[str, ...] = ()


CASES = [
    Case("addition", "addition", addition_floor),
    Case("sine example", "sine", sine_floor),
    Case("a fresh tinkerflow new plugin", "bench_xor", new_plugin_floor),
    Case("lyrics (word LSTM)", "lyrics", None, backends=("auto", "jax")),
    Case("classifier, simple CNN", "classifier", None, backends=("auto", "jax"), overrides=("model=simple",)),
]


def new_plugin_env(folder: Path) -> dict:
    """``tinkerflow new bench_xor`` in ``folder``, visible to a subprocess through a
    ``.dist-info`` with its entry point (what installing it would write) on PYTHONPATH."""
    from tinkerflow.core.scaffold import new_plugin

    package = new_plugin("bench_xor", folder)
    info = folder / "site" / "tinkerflow_bench_xor-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinkerflow-bench-xor\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[tinkerflow]\nbench_xor = tinkerflow_bench_xor\n")
    path = os.pathsep.join([str(package), str(folder / "site"), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path.rstrip(os.pathsep)}


def train_epoch(case: Case, backend: str, epochs: int, env: dict) -> tuple[str, float, float]:
    """``tinkerflow train`` of ``case`` on ``backend``: the backend it ran on, the median
    seconds of an epoch, and the fit's seconds per epoch."""
    with tempfile.TemporaryDirectory() as runs:
        done = subprocess.run(
            [sys.executable, "-m", "tinkerflow.core.cli", "train", f"experiment={case.experiment}", *case.overrides,
             f"paths.runs={runs}", f"trainer.epochs={epochs}", f"trainer.backend={backend}",
             "trainer.progress=none", "trainer.early_stopping.enabled=false"],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
        if done.returncode != 0:
            raise SystemExit(f"{case.label} on {backend} failed: {done.stderr.strip().splitlines()[-1:]}")
        (metrics,) = Path(runs).glob(f"{case.experiment}/*/metrics.csv")
        seconds = [float(row["seconds"]) for row in csv.DictReader(metrics.open())]
        info = json.loads((metrics.parent / "run.json").read_text())
    return info["backend"], statistics.median(seconds[1:]), info["timings"]["fit_s"] / len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--only", nargs="*", help="experiments to measure (default: all)")
    args = parser.parse_args()
    print(f"default configs, early stopping off, median of {args.epochs - 1} epochs; ratios to the NumPy floor")
    print(f"  {'':<48} {'one epoch':>18} {'fit / epochs (all in)':>26}")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**new_plugin_env(Path(scratch)), "XDG_CACHE_HOME": str(Path(scratch) / "cache")}
        for case in CASES:
            if args.only and case.experiment not in args.only:
                continue
            floor = case.floor(args.epochs) if case.floor else None
            if floor:
                print(f"  {f'{case.label}: NumPy loop (the floor)':<48} {floor:>9.4f} s  1.00x")
            for backend in case.backends:
                used, epoch, fit = train_epoch(case, backend, args.epochs, env)
                name = f"{case.label}: default ({used})" if backend == "auto" else f"{case.label}: {backend}"
                print(f"  {name:<48} {epoch:>9.4f} s {_ratio(epoch, floor)} {fit:>13.4f} s {_ratio(fit, floor)}")


def _ratio(seconds: float, floor: float | None) -> str:
    return f"{seconds / floor:5.2f}x" if floor else " " * 6


if __name__ == "__main__":
    main()
