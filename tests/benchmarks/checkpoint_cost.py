"""Milliseconds a resume checkpoint's variables take to write: the ``.npz`` the runner
writes (``core.resume.save_variables``) against Keras' ``save_weights`` to ``.weights.h5``
(what it wrote before), for the addition model on each backend, measured in one run.

    .venv/bin/python tests/benchmarks/checkpoint_cost.py [--calls 50]

Each backend runs in a subprocess of its own; both writers go through a temporary file,
an fsync and a rename. Prints the median of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, statistics, sys, tempfile, time
    from pathlib import Path
    from tinkerflow.core.config import TrainerConfig
    from tinkerflow.core.resume import save_variables
    from tinkerflow.core.runfs import save_model_atomic
    from tinkerflow.plugins.addition.experiment import Addition, AdditionConfig

    experiment = Addition(AdditionConfig(), TrainerConfig(learning_rate=0.01), seed=0)
    data = experiment.load_data()
    model = experiment.build_model()
    model.fit(*data.train, epochs=1, batch_size=32, verbose=0)
    folder = Path(tempfile.mkdtemp())
    writers = {"npz": lambda: save_variables(model, folder / "epoch.npz"),
               "h5": lambda: save_model_atomic(model, folder / "epoch.weights.h5", weights_only=True)}
    times = {name: [] for name in writers}
    for _ in range(int(sys.argv[1])):
        for name, write in writers.items():
            start = time.perf_counter()
            write()
            times[name].append(time.perf_counter() - start)
    print(json.dumps({name: statistics.median(t) * 1000 for name, t in times.items()}))
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(f"one checkpoint of the addition model and its Adam state, median of {args.calls} calls")
    for backend in ("tensorflow", "jax"):
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(args.calls)], capture_output=True, text=True,
                              env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode != 0:
            raise SystemExit(f"{backend}: {done.stderr.strip().splitlines()[-1:]}")
        ms = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {backend:<11} .npz {ms['npz']:6.2f} ms   Keras .weights.h5 {ms['h5']:6.2f} ms   "
              f"{ms['h5'] / ms['npz']:5.1f}x cheaper")


if __name__ == "__main__":
    main()
