"""addition: can a neural network add two numbers? (protocol: docs/experiments/addition.md)

Two numbers go in, their predicted sum comes out, through one sigmoid hidden layer. A
prediction counts as correct only if it rounds to the true sum (2 + 2 = 4.4 is right,
4.6 is wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinkerflow.core import (
    ConfigError,
    DeployInfo,
    Experiment,
    ExperimentConfig,
    ExportSpec,
    Metric,
    SampleOptions,
    Splits,
    knob,
)
from tinkerflow.core.runfs import make_folder, save_arrays, write_atomic

from . import plots


@dataclass
class AdditionConfig(ExperimentConfig):
    hidden: int = knob(8, min=1, max=65536, help="units in the sigmoid hidden layer")
    max_sum: int = knob(256, min=2, max=2**24, help="largest possible sum; both numbers are drawn from 0..max_sum/2")
    samples: int = knob(10000, min=10, max=10_000_000, help="generated pairs for training and validation")
    validation_split: float = knob(0.2, gt=0.0, max=0.9, help="fraction of the samples used for validation")
    test_samples: int = knob(2000, min=1, max=10_000_000, help="size of the separate test set")
    scale_inputs: bool = knob(True, help="divide the inputs by max_sum (and scale the output back) inside the model")
    activation: str = knob("sigmoid", choices=["sigmoid", "tanh", "relu", "linear"], help="hidden activation")


@dataclass
class AdditionSampleOptions(SampleOptions):
    pairs: str = knob("", help="pairs to predict, e.g. '2+2,60+60'; empty: a few chosen for max_sum")
    cross_section: int | None = knob(None, min=0, help="the constant of the a + b = constant cross-section")
    grid: int = knob(129, min=2, max=1025, help="points per axis of the error surface")


def rounded_accuracy(y_true, y_pred):
    """Share of predictions that round to the exact true sum."""
    from keras import ops

    return ops.mean(ops.cast(ops.equal(ops.round(y_pred), ops.cast(y_true, y_pred.dtype)), "float32"))


def _register_metric():
    import keras

    return keras.saving.register_keras_serializable(package="tinkerflow.addition")(rounded_accuracy)


class Addition(Experiment):
    name = "addition"
    description = "Can a neural network add two numbers?"
    embed_height = 520  # its embed view at 320–900 px wide, after a use
    backends = ("jax", "tensorflow")  # a whole epoch per compiled call: ~10x TensorFlow's fit (make bench)
    Config = AdditionConfig
    SampleOptions = AdditionSampleOptions
    export_spec = ExportSpec(metric=Metric("accuracy", higher_is_better=True), margin=0.02)
    objective = Metric("best_val_rounded_accuracy", higher_is_better=True)  # exact-match accuracy on validation data
    smoke_overrides = (
        "experiment.samples=200",
        "experiment.test_samples=50",
        "trainer.epochs=2",
        "trainer.checkpoint_seconds=0",
    )
    config: AdditionConfig

    # -- data ------------------------------------------------------------------------------

    def draw(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``count`` pairs drawn uniformly from 0..max_sum/2 each, with their sums."""
        half = self.config.max_sum // 2
        ab = rng.integers(0, half + 1, size=(count, 2)).astype("float32")
        return ab, ab.sum(axis=1, keepdims=True)

    def load_data(self) -> Splits:
        cfg = self.config
        rng = np.random.default_rng(self.seed)
        x, y = self.draw(cfg.samples, rng)
        n_val = max(1, int(round(cfg.samples * cfg.validation_split)))
        test_x, test_y = self.draw(cfg.test_samples, np.random.default_rng([self.seed, 1]))
        return Splits(
            train=(x[n_val:], y[n_val:]),
            validation=(x[:n_val], y[:n_val]),
            test=(test_x, test_y),
            info={"train": len(x) - n_val, "validation": n_val, "test": cfg.test_samples,
                  "operand_range": [0, cfg.max_sum // 2]},
        )

    # -- model -----------------------------------------------------------------------------

    def build_model(self):
        import keras

        cfg = self.config
        inputs = keras.Input(shape=(2,), name="ab")
        x = keras.layers.Rescaling(1.0 / cfg.max_sum, name="scale_in")(inputs) if cfg.scale_inputs else inputs
        hidden = keras.layers.Dense(cfg.hidden, activation=cfg.activation, name="hidden")(x)
        out = keras.layers.Dense(1, name="out")(hidden)
        if cfg.scale_inputs:
            out = keras.layers.Rescaling(float(cfg.max_sum), name="sum")(out)
        model = keras.Model(inputs, out, name=f"addition_h{cfg.hidden}_s{cfg.max_sum}")
        model.compile(
            optimizer=self.optimizer(),
            loss="mse",
            metrics=[_register_metric()],
            **self.compile_options(),
        )
        return model

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, model, data: Splits) -> dict[str, float]:
        x, y = data.test
        pred = model.predict(x, batch_size=1024, verbose=0)
        return {
            "test_accuracy": float(np.mean(np.round(pred) == y)),
            "test_mse": float(np.mean((pred - y) ** 2)),
            "test_mae": float(np.mean(np.abs(pred - y))),
        }

    # -- sampling ------------------------------------------------------------------------------

    def default_pairs(self, cross: int) -> list[tuple[int, int]]:
        half = self.config.max_sum // 2
        pairs = [(2, 2), (cross // 2, cross - cross // 2), (round(cross * 103 / 120), cross - round(cross * 103 / 120))]
        return [(min(a, half), min(b, half)) for a, b in pairs]

    def cross_section_sum(self, requested: int | None) -> int:
        if requested is not None:
            return min(requested, self.config.max_sum)
        return max(2, round(self.config.max_sum * 120 / 256))  # the post's a + b = 120 at max_sum 256

    def sample(self, model, out_dir: Path, options: AdditionSampleOptions | None = None) -> dict:
        import keras

        options = options or AdditionSampleOptions()
        out_dir = make_folder(out_dir)
        cfg = self.config
        cross = self.cross_section_sum(options.cross_section)
        pairs = parse_pairs(options.pairs) if options.pairs else self.default_pairs(cross)

        def predict(ab: np.ndarray) -> np.ndarray:
            # a direct call: predict() would retrace its compiled function for every new shape
            return keras.ops.convert_to_numpy(model(ab.astype("float32"), training=False)).reshape(-1)

        ab = np.array(pairs, dtype="float32")
        guesses = predict(ab)
        lines = []
        predictions = []
        for (a, b), guess in zip(pairs, guesses):
            ok = round(float(guess)) == a + b
            lines.append(f"{a} + {b} = {guess:.2f}  (true {a + b}, error {guess - (a + b):+.2f}, "
                         f"{'right' if ok else 'wrong'})")
            predictions.append({"a": a, "b": b, "prediction": float(guess), "correct": ok})
        write_atomic(out_dir / "predictions.txt", "\n".join(lines) + "\n")

        half = cfg.max_sum // 2
        axis = np.unique(np.linspace(0, half, min(options.grid, half + 1)).round().astype(int))
        grid_a, grid_b = np.meshgrid(axis, axis, indexing="ij")
        surface = np.abs(predict(np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)) - (grid_a + grid_b).ravel())
        surface = surface.reshape(grid_a.shape)
        plots.error_surface(out_dir / "error_surface.png", axis, surface, title=model.name)

        a_values = np.arange(max(0, cross - half), min(cross, half) + 1)
        section = predict(np.stack([a_values, cross - a_values], axis=1)) - cross
        plots.cross_section(out_dir / "cross_section.png", a_values, section, cross)

        weights, bias = (np.asarray(w) for w in model.get_layer("out").get_weights())
        hidden_model = _hidden_activations_model(model)
        activations = keras.ops.convert_to_numpy(hidden_model(np.array([[2, 2]], dtype="float32"))).reshape(-1)
        plots.inner_workings(out_dir / "inner_workings.png", weights.reshape(-1), activations, float(bias[0]),
                             scale=float(cfg.max_sum) if cfg.scale_inputs else 1.0)

        save_arrays(out_dir / "sample_data.npz", axis=axis, surface=surface, a_values=a_values,
                            section=section, cross=cross, weights=weights.reshape(-1), bias=bias,
                            activations=activations)
        return {
            "predictions": predictions,
            "error_surface": {"mean_abs_error": float(surface.mean()), "max_abs_error": float(surface.max()),
                              "share_correct": float(np.mean(surface < 0.5)), "grid": int(len(axis))},
            "cross_section": {"sum": int(cross), "max_abs_error": float(np.abs(section).max())},
            "hidden_to_output_weights": [float(w) for w in weights.reshape(-1)],
            "output_bias": float(bias[0]),
            "hidden_activations_2_plus_2": [float(v) for v in activations],
            "files": ["predictions.txt", "error_surface.png", "cross_section.png", "inner_workings.png",
                      "sample_data.npz"],
        }

    @classmethod
    def sweep_report(cls, runs: list[dict], out_dir: Path) -> list[str]:
        """The post's comparisons across networks: error surfaces, the a + b = constant
        cross-sections and the hidden-to-output weights, one network per (sweep, max_sum,
        hidden): the job with the lowest seed."""
        chosen: dict[tuple, dict] = {}
        for run in sorted(runs, key=lambda r: (r["config"].get("seed") or 0, r["job"])):
            path = Path(run["path"]) / "samples" / "sample_data.npz"
            config = run["config"]
            key = (run.get("sweep", ""), config.get("experiment.max_sum"), config.get("experiment.hidden"))
            if key in chosen or not path.is_file():
                continue
            with np.load(path, allow_pickle=False) as data:
                chosen[key] = {"sweep": key[0], "max_sum": key[1], "hidden": key[2], "job": run["job"],
                               **{name: data[name] for name in data.files}}
        if not chosen:
            return []
        networks = [chosen[key] for key in sorted(chosen, key=lambda k: (k[1], str(k[0]), k[2]))]
        plots.surface_grid(out_dir / "error_surfaces.png", networks)
        plots.cross_sections(out_dir / "cross_sections.png", networks)
        plots.weights_grid(out_dir / "hidden_to_output_weights.png", networks)
        return ["error_surfaces.png", "cross_sections.png", "hidden_to_output_weights.png"]

    def custom_objects(self) -> dict:
        return {"rounded_accuracy": _register_metric()}

    # -- export -----------------------------------------------------------------------------------

    def example_inputs(self) -> np.ndarray:
        half = self.config.max_sum // 2
        cross = self.cross_section_sum(None)
        pairs = [(0, 0), (1, 1), (half, half), *self.default_pairs(cross)]
        return np.array(pairs, dtype="float32")

    def export_metric(self, predict, data: Splits) -> float:
        x, y = data.validation
        return float(np.mean(np.round(np.asarray(predict(x))) == y))

    def deploy_info(self) -> DeployInfo:
        half = self.config.max_sum // 2
        return DeployInfo(
            description={"ab": f"two numbers a and b, each in 0..{half}", "sum": "the predicted a + b"},
            intermediate_layers=["hidden"],
            settings={"preprocessing": {"ab": "none: the model scales its inputs itself" if self.config.scale_inputs
                                        else "none: raw numbers"},
                      "postprocessing": {"sum": "round to the nearest integer to read off the answer"},
                      "input_range": [0, half], "max_sum": self.config.max_sum},
        )

    def representative_data(self):
        rng = np.random.default_rng([self.seed, 2])
        for _ in range(16):
            yield self.draw(32, rng)[0]


def _hidden_activations_model(model):
    import keras

    return keras.Model(model.input, model.get_layer("hidden").output)


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``"2+2, 60+60"`` -> ``[(2, 2), (60, 60)]``."""
    pairs = []
    for item in text.split(","):
        parts = item.strip().split("+")
        try:
            a, b = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--pairs: got {item.strip()!r}, expected pairs such as '2+2,60+60'") from None
        if a < 0 or b < 0:
            raise ConfigError(f"--pairs: got {item.strip()!r}, expected non-negative numbers")
        pairs.append((a, b))
    return pairs
