"""An example tinkerflow plugin: a small network learns y = sin(x) on [-pi, pi].

It shows the whole plugin contract: a typed config, data, model, evaluation, a sample,
golden inputs for export checks, and the hook that registers the experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinkerflow.core import Experiment, ExperimentConfig, SampleOptions, Splits, hookimpl, knob


@dataclass
class SineConfig(ExperimentConfig):
    units: int = knob(16, min=1, max=65536, help="units in each hidden layer")
    layers: int = knob(2, min=1, max=8, help="number of hidden layers")
    samples: int = knob(2000, min=10, max=10_000_000, help="training points drawn uniformly from [-pi, pi]")
    noise: float = knob(0.0, min=0.0, help="standard deviation of noise added to the targets")


@dataclass
class SineSampleOptions(SampleOptions):
    points: int = knob(5, min=1, max=1000, help="how many evenly spaced x values to predict")


class Sine(Experiment):
    name = "sine"
    description = "Example plugin: learn y = sin(x)"
    Config = SineConfig
    SampleOptions = SineSampleOptions
    smoke_overrides = ("experiment.samples=64", "trainer.epochs=2")
    backends = ("jax", "tensorflow")  # trainer.backend=auto trains on JAX: in-memory arrays, a standard fit
    # where training starts for this experiment (the command line still wins: trainer.epochs=5)
    trainer_defaults = {"epochs": 300, "learning_rate": 0.01, "steps_per_execution": 50,
                        "early_stopping": {"patience": 20}}
    config_dir = "conf"  # its own Hydra config files: +sweep=sine_width
    config: SineConfig

    def load_data(self) -> Splits:
        rng = np.random.default_rng(self.seed)

        def draw(count: int):
            x = rng.uniform(-math.pi, math.pi, size=(count, 1)).astype("float32")
            y = np.sin(x) + rng.normal(0, self.config.noise, size=x.shape).astype("float32")
            return x, y.astype("float32")

        n = self.config.samples
        return Splits(train=draw(n), validation=draw(max(1, n // 5)), test=draw(max(1, n // 5)),
                      info={"train": n, "validation": max(1, n // 5), "test": max(1, n // 5)})

    def build_model(self):
        import keras

        inputs = keras.Input(shape=(1,), name="x")
        h = inputs
        for i in range(self.config.layers):
            h = keras.layers.Dense(self.config.units, activation="tanh", name=f"hidden_{i}")(h)
        outputs = keras.layers.Dense(1, name="y")(h)
        model = keras.Model(inputs, outputs, name="sine")
        model.compile(optimizer=self.optimizer(), loss="mse", metrics=["mae"], **self.compile_options())
        return model

    def sample(self, model, out_dir: Path, options: SineSampleOptions | None = None) -> dict:
        options = options or SineSampleOptions()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        x = np.linspace(-math.pi, math.pi, options.points, dtype="float32").reshape(-1, 1)
        y = np.asarray(model(x, training=False)).reshape(-1)
        lines = [f"sin({xi:+.3f}) ~ {yi:+.4f} (true {math.sin(xi):+.4f})" for xi, yi in zip(x.ravel(), y)]
        (out_dir / "predictions.txt").write_text("\n".join(lines) + "\n")
        return {"max_abs_error": float(np.max(np.abs(y - np.sin(x.ravel())))), "files": ["predictions.txt"]}

    def example_inputs(self) -> np.ndarray:
        return np.array([[-3.0], [-1.0], [0.0], [0.5], [2.0]], dtype="float32")


@hookimpl
def register_experiments(register):
    register(Sine)
