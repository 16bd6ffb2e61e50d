"""What tracking costs: seconds per epoch of the default addition run with each tracker
against ``tracking=none``, and the default joblib sweep's wall time with ``tracking=mlflow``
against without, measured in one session.

    .venv/bin/python tests/benchmarks/tracking_speed.py [--epochs 40] [--rounds 3] [--sweep-rounds 1]

An epoch's seconds come from the run's metrics.csv, whose callback runs after the trackers'
(their per-epoch work is inside each epoch's figure); the first, tracing epoch of each run is
left out. Configurations alternate within each round, so that a busy machine slows them
alike. Prints the median epoch of each and its ratio to ``tracking=none`` (the target: at
most 1.05), and the median of each run's whole fit (``timings.fit_s``: with MLflow, the
background sends waited for at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRACKERS = ["none", "mlflow", "tensorboard", "both"]
SWEEP = ["-m", "experiment.hidden=1,2,4", "hydra/launcher=joblib"]


def train(tracking: str, epochs: int) -> tuple[list[float], float]:
    """The seconds of each epoch but the first, and the whole fit's, of one run."""
    from tinkerflow.core import cli

    with tempfile.TemporaryDirectory() as runs:
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["train", f"paths.runs={runs}", f"trainer.epochs={epochs}", "trainer.progress=none",
                             "trainer.early_stopping.enabled=false", f"tracking={tracking}"])
        if code != 0:
            sys.exit(f"tracking_speed: tinkerflow train tracking={tracking} exited {code}")
        (run,) = Path(runs).glob("addition/*/run.json")
        with (run.parent / "metrics.csv").open() as f:
            seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
        return seconds[1:], json.loads(run.read_text())["timings"]["fit_s"]


def sweep_seconds(tracking: str) -> float:
    tinkerflow = str(Path(sys.executable).parent / "tinkerflow")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = subprocess.run([tinkerflow, "train", *SWEEP, "trainer.progress=none", f"tracking={tracking}"],
                              cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"tracking_speed: the sweep with tracking={tracking} exited {done.returncode}: "
                     f"{done.stderr.strip().splitlines()[-1:]}")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs of each run (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tracker (default 3)")
    parser.add_argument("--sweep-rounds", type=int, default=1, help="sweeps with and without MLflow (default 1; "
                                                                    "0 leaves the sweep out)")
    args = parser.parse_args()
    if args.epochs < 3 or args.rounds < 1:
        parser.error("expected --epochs of at least 3 and --rounds of at least 1")
    per_epoch: dict[str, list[float]] = {t: [] for t in TRACKERS}
    fits: dict[str, list[float]] = {t: [] for t in TRACKERS}
    for _ in range(args.rounds):
        for tracking in TRACKERS:
            seconds, fit = train(tracking, args.epochs)
            per_epoch[tracking] += seconds
            fits[tracking].append(fit)
    base, base_fit = statistics.median(per_epoch["none"]), statistics.median(fits["none"])
    print(f"the default addition run, {args.rounds} runs of {args.epochs} epochs per tracker:")
    print(f"  {'':<21} {'epoch (median)':>16} {'ratio':>7} {'whole fit':>11} {'ratio':>7}")
    for tracking in TRACKERS:
        median, fit = statistics.median(per_epoch[tracking]), statistics.median(fits[tracking])
        print(f"  tracking={tracking:<12} {median * 1000:13.1f} ms {median / base:6.3f}x {fit:9.2f} s "
              f"{fit / base_fit:6.3f}x")
    if args.sweep_rounds > 0:
        walls: dict[str, list[float]] = {"none": [], "mlflow": []}
        for _ in range(args.sweep_rounds):
            for tracking in walls:
                walls[tracking].append(sweep_seconds(tracking))
        plain = statistics.median(walls["none"])
        print(f"wall time of the default sweep (tinkerflow train {' '.join(SWEEP)}), {args.sweep_rounds} each:")
        for tracking, values in walls.items():
            print(f"  tracking={tracking:<12} {statistics.median(values):7.1f} s   "
                  f"{statistics.median(values) / plain:5.3f}x")


if __name__ == "__main__":
    main()
