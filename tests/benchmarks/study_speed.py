"""The whole addition study (15 jobs: one seed of ``+sweep=addition_study``, full protocol)
against the naive baseline, measured in one run.

    .venv/bin/python tests/benchmarks/study_speed.py                 # time the study, print the ratio
    .venv/bin/python tests/benchmarks/study_speed.py --compare 1x256,16x256
                                                                     # also train those configs naively

The naive baseline is plain ``model.fit(batch_size=32)`` on the TensorFlow backend. Its
seconds per epoch are measured first, on an idle machine; the naive study would run the
same epochs as the real one, so its cost is estimated as (epochs of all jobs) x (naive
seconds per epoch) -- generous to the baseline, which would also pay process start-up and
evaluation. ``--compare`` trains the named configs (hidden x max_sum) to the full protocol
the naive way (``trainer.backend=tensorflow trainer.loop=keras trainer.steps_per_execution=1``)
and prints their test accuracy next to the study's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, str(Path(__file__).parent))
TINKERFLOW = str(Path(sys.executable).parent / "tinkerflow")
NAIVE = ["trainer.backend=tensorflow", "trainer.loop=keras", "trainer.steps_per_execution=1"]


def run_study(runs: Path, launcher: str) -> tuple[float, Path]:
    started = time.perf_counter()
    done = subprocess.run([TINKERFLOW, "train", "-m", "+sweep=addition_study", f"hydra/launcher={launcher}",
                           f"paths.runs={runs}", "seed=0", "trainer.progress=none"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the study failed:\n{done.stderr[-3000:]}")
    (sweep,) = (runs / "addition" / "multirun").iterdir()
    return wall, sweep


def naive_runs(runs: Path, configs: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """Train each config naively to the full protocol, two at a time (one core each)."""
    from tinkerflow.core.rundir import Run

    results = {}
    pending = list(configs)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = []
        for hidden, max_sum in batch:
            folder = runs / f"naive_h{hidden}_s{max_sum}"
            env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
            procs.append(((hidden, max_sum), folder, subprocess.Popen(
                [TINKERFLOW, "train", "+sweep=addition_study", f"experiment.hidden={hidden}",
                 f"experiment.max_sum={max_sum}", *NAIVE, f"hydra.run.dir={folder}", "trainer.progress=none"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)))
        for key, folder, proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                sys.exit(f"naive run {key} failed:\n{err[-2000:]}")
            results[key] = Run.open(folder).read_info()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", default="joblib", help="Hydra launcher for the study (default: joblib)")
    parser.add_argument("--naive-epochs", type=int, default=12, help="epochs timed for the naive baseline")
    parser.add_argument("--compare", default="", help="configs to train naively, e.g. 1x256,16x256")
    parser.add_argument("--keep", help="keep the runs in this folder instead of a temporary one")
    args = parser.parse_args()

    from fit_speed import plain_fit

    from tinkerflow.core.report import collect
    from tinkerflow.core.tf_quiet import import_keras

    import_keras()
    naive_epoch = plain_fit(args.naive_epochs)
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(args.keep or scratch)
        runs.mkdir(parents=True, exist_ok=True)
        wall, sweep = run_study(runs, args.launcher)
        rows = collect(sweep)[0]
        configs = [tuple(int(c) for c in item.split("x")) for item in args.compare.split(",") if item]
        naive = naive_runs(runs, configs) if configs else {}

    print(f"addition study: {len(rows)} jobs, full protocol, hydra/launcher={args.launcher}, {os.cpu_count()} cores")
    print(f"{'hidden':>6} {'max_sum':>7} {'epochs':>6} {'test acc':>9} {'test mse':>11} {'naive acc':>9} {'diff':>6}")
    for r in rows:
        key = (r["config"].get("experiment.hidden"), r["config"].get("experiment.max_sum"))
        m = r["metrics"]
        line = (f"{key[0]:>6} {key[1]:>7} {r['epochs_run'] or 0:>6} {m.get('test_accuracy', float('nan')):>9.4f} "
                f"{m.get('test_mse', float('nan')):>11.4g}")
        if key in naive:
            other = naive[key]["metrics"]["test_accuracy"]
            line += f" {other:>9.4f} {m['test_accuracy'] - other:>+6.3f}"
        print(line)
    epochs = sum(r["epochs_run"] or 0 for r in rows)
    estimate = epochs * naive_epoch
    print(f"study wall time:                      {wall:8.1f} s  ({wall / 60:.2f} min; goal: at most 5 min)")
    print(f"naive model.fit(batch_size=32), TF:   {naive_epoch:8.3f} s/epoch")
    print(f"naive study ({epochs} epochs, estimated): {estimate:8.1f} s  ({estimate / 60:.1f} min)")
    print(f"ratio naive / study:                  {estimate / wall:8.1f}x")
    for key, info in naive.items():
        print(f"naive run hidden={key[0]} max_sum={key[1]}: {info['epochs_run']} epochs, "
              f"{info['timings']['fit_s']:.0f} s fit, {info['timings']['seconds_per_epoch']:.3f} s/epoch")


if __name__ == "__main__":
    main()
