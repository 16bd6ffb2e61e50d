"""Seconds per epoch of the default addition run on each training backend, against a NumPy
floor: the same 2-8-1 network, data, Adam and batch size in a plain NumPy loop.

    .venv/bin/python tests/benchmarks/backend_speed.py [--epochs 30]

Each backend trains in a ``tinkerflow train`` subprocess of its own (Keras picks its backend
once per process), with the resume checkpoint after every epoch (the default) and at most
every 30 s. Two figures each: the median of ``metrics.csv``'s per-epoch times (the first,
tracing epoch left out; the epoch's training and validation only), and the whole fit's wall
time (``run.json``) over the epochs — compile, callbacks and checkpoints included. Each is
printed with its ratio to the NumPy floor measured in this run.
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
from pathlib import Path

import numpy as np


def numpy_floor(epochs: int, seed: int = 0) -> float:
    """Median seconds per epoch of the addition network (inputs / 256, 8 sigmoid units, one
    linear output × 256, MSE) trained with Adam (lr 0.01) on 8,000 pairs in batches of 32,
    with a validation pass over 2,000 more, in NumPy."""
    rng = np.random.default_rng(seed)
    ab = rng.integers(0, 129, size=(10_000, 2)).astype(np.float32)
    total = ab.sum(axis=1, keepdims=True)
    x, y, xv, yv = ab[:8000] / 256, total[:8000], ab[8000:] / 256, total[8000:]
    limit1, limit2 = np.sqrt(6 / (2 + 8)), np.sqrt(6 / (8 + 1))
    params = [rng.uniform(-limit1, limit1, (2, 8)).astype(np.float32), np.zeros(8, np.float32),
              rng.uniform(-limit2, limit2, (8, 1)).astype(np.float32), np.zeros(1, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1, b2, eps, step = 0.01, 0.9, 0.999, 1e-7, 0

    def forward(inputs):
        hidden = 1 / (1 + np.exp(-(inputs @ params[0] + params[1])))
        return hidden, (hidden @ params[2] + params[3]) * 256

    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        for begin in range(0, len(x), 32):
            index = order[begin:begin + 32]
            xb, yb = x[index], y[index]
            hidden, out = forward(xb)
            d_out = 2 * (out - yb) / len(xb) * 256
            d_hidden = d_out @ params[2].T * hidden * (1 - hidden)
            grads = [xb.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_out, d_out.sum(0)]
            step += 1
            for k, g in enumerate(grads):
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                params[k] -= lr * (m[k] / (1 - b1 ** step)) / (np.sqrt(v[k] / (1 - b2 ** step)) + eps)
        float(np.mean((forward(xv)[1] - yv) ** 2))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def backend_epoch(backend: str, epochs: int, checkpoint_seconds: float) -> tuple[float, float]:
    """``tinkerflow train`` (the default addition run) on ``backend``: the median seconds of
    an epoch, and the fit's seconds per epoch."""
    with tempfile.TemporaryDirectory() as runs:
        done = subprocess.run(
            [sys.executable, "-m", "tinkerflow.core.cli", "train", f"paths.runs={runs}", f"trainer.epochs={epochs}",
             f"trainer.backend={backend}", f"trainer.checkpoint_seconds={checkpoint_seconds}",
             "trainer.progress=none", "trainer.early_stopping.enabled=false"],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            raise SystemExit(f"tinkerflow train on {backend} failed: {done.stderr.strip().splitlines()[-1:]}")
        (metrics,) = Path(runs).glob("addition/*/metrics.csv")
        seconds = [float(row["seconds"]) for row in csv.DictReader(metrics.open())]
        fit = json.loads((metrics.parent / "run.json").read_text())["timings"]["fit_s"]
    return statistics.median(seconds[1:]), fit / len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    floor = numpy_floor(args.epochs)
    print(f"addition (default config), 8,000 training samples, batch 32, median of {args.epochs - 1} epochs")
    print(f"  {'':<44} {'one epoch':>20} {'fit / epochs (all in)':>28}")
    print(f"  {'NumPy loop (the floor)':<44} {floor:>11.4f} s  1.00x")
    for backend in ("tensorflow", "jax"):
        for seconds, label in ((0, "a checkpoint every epoch"), (30, "checkpoints at most every 30 s")):
            epoch, fit = backend_epoch(backend, args.epochs, seconds)
            print(f"  {f'{backend}, {label}':<44} {epoch:>11.4f} s {epoch / floor:5.2f}x {fit:>15.4f} s "
                  f"{fit / floor:6.2f}x")


if __name__ == "__main__":
    main()
