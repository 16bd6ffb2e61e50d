"""Seconds per epoch of the addition model: plain ``model.fit(batch_size=32)`` against a
real ``tinkerflow train`` run of the same model and data, measured in one process.

    .venv/bin/python tests/benchmarks/fit_speed.py [--epochs 30]

Prints the median seconds per epoch of each (the first, tracing epoch left out) and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path


def plain_fit(epochs: int) -> float:
    import keras

    from tinkerflow.core.config import TrainerConfig
    from tinkerflow.plugins.addition.experiment import Addition, AdditionConfig

    experiment = Addition(AdditionConfig(), TrainerConfig(), seed=0)
    data = experiment.load_data()
    keras.utils.set_random_seed(0)
    model = experiment.build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")  # Keras defaults otherwise

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    times: list[float] = []
    x, y = data.train
    model.fit(x, y, validation_data=data.validation, batch_size=32, epochs=epochs, verbose=0,
              callbacks=[EpochTimer()])
    return statistics.median(times[1:])


def tinkerflow_fit(epochs: int) -> float:
    from tinkerflow.core import cli

    with tempfile.TemporaryDirectory() as runs:
        code = cli.main(["train", f"paths.runs={runs}", f"trainer.epochs={epochs}", "trainer.progress=none",
                         "trainer.early_stopping.enabled=false"])
        assert code == 0
        (metrics,) = Path(runs).glob("addition/*/metrics.csv")
        seconds = [float(row["seconds"]) for row in csv.DictReader(metrics.open())]
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    from tinkerflow.core.tf_quiet import import_keras

    import_keras()
    plain = plain_fit(args.epochs)
    ours = tinkerflow_fit(args.epochs)
    print(f"addition model, 8,000 training samples, batch 32, median of {args.epochs - 1} epochs")
    print(f"  plain model.fit(batch_size=32):   {plain:.3f} s/epoch")
    print(f"  tinkerflow train (defaults):      {ours:.3f} s/epoch")
    print(f"  ratio plain / tinkerflow:         {plain / ours:.2f}x")


if __name__ == "__main__":
    main()
