"""The Experiment base class: the contract every experiment plugin implements.

An experiment reads top to bottom like a keras-io example: data, model, train, evaluate,
sample. Subclass :class:`Experiment`, give it a ``name`` and a ``Config`` dataclass, and
register it from a plugin's ``register_experiments`` hook::

    @dataclass
    class SineConfig(ExperimentConfig):
        units: int = knob(16, min=1)

    class Sine(Experiment):
        name = "sine"
        Config = SineConfig

        def load_data(self) -> Splits: ...
        def build_model(self) -> keras.Model: ...
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict

from . import initial_weights, jax_loop
from .batch_order import shuffled_batches
from .config import ExperimentConfig, TrainerConfig
from .errors import DataError

if TYPE_CHECKING:
    import keras

    from .rundir import Run


class DataState(BaseModel):
    """Base of what an experiment learns from its data and needs after training: a
    vocabulary, class names, condition columns. A subclass names its fields with types
    (``tokens: list[str]``); :meth:`Experiment.load_data` returns an instance in
    :attr:`Splits.state`, the core saves it as the run's ``learned.json`` and hands it to
    every later use of the run (``self.state``), read back and validated like every record
    of a run folder. Values are JSON's: strings, numbers, lists, dicts."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass
class Splits:
    """The data of one run.

    Each split is either a tuple ``(x, y)`` of arrays (or of dicts of arrays for named
    inputs) or a batched ``tf.data.Dataset`` of ``(x, y)`` pairs. ``info`` is free-form
    and is saved in ``run.json`` (sample counts, corpus statistics, skipped files).
    ``state`` is what the experiment learned from this data (an instance of its
    :attr:`Experiment.State`), None for an experiment without one.
    """

    train: Any
    validation: Any = None
    test: Any = None
    info: dict = field(default_factory=dict)
    state: DataState | None = None


@dataclass(frozen=True)
class ImageClassifierSpec:
    """What phone frameworks need to run an image classifier as one (MediaPipe Tasks'
    ImageClassifier reads it from the .tflite's metadata): the model takes one
    ``(batch, size, size, 3)`` RGB image and gives one score per label of
    ``deploy_info().labels``; it wants ``(pixel - mean) / std`` for pixels in 0..255, per
    channel (one value: every channel)."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Metric:
    """A number a run reports, and which way is better: ``Metric("best_val_accuracy",
    higher_is_better=True)``. An experiment's :attr:`~Experiment.objective` (what a search
    optimises) and its export metric (what :meth:`~Experiment.export_metric` measures) are
    Metrics."""

    name: str
    higher_is_better: bool = False

    def best(self, values) -> int:
        """The index of the best of ``values`` (the first, on a tie)."""
        values = [float(v) for v in values]
        return values.index(max(values) if self.higher_is_better else min(values))

    def drop(self, value: float, reference: float) -> float:
        """How much worse ``value`` is than ``reference`` (negative when it is better)."""
        return reference - value if self.higher_is_better else value - reference


@dataclass(frozen=True)
class ExportSpec:
    """What an experiment's exported files are, and how the export judges them.

    ``metric``
        what :meth:`Experiment.export_metric` measures (default: the mean squared error).
    ``margin``
        how much worse (absolute, in the metric's units) a quantized variant may measure than
        Keras before its export fails; float variants must match Keras within the format's
        tolerances instead.
    ``inference_batch``
        how many examples the deployed model takes per call (the dcgan grid: 16). TFLite
        files are exported with this fixed batch, because fixed shapes run several times
        faster in LiteRT and are the only shapes LiteRT.js accepts; a runtime given another
        batch splits or pads it.
    ``integer_io``
        True when every input and output is a quantity a byte can carry (pixels, scores,
        bounded numbers): the TFLite exporter then also writes ``uint8_io``, a full-integer
        file with uint8 inputs and outputs, as phone pipelines and LiteRT.js take them.
    ``image_classifier``
        an :class:`ImageClassifierSpec` when the model is an image classifier: its TFLite files
        then carry the normalization and the labels file MediaPipe Tasks' ImageClassifier
        needs, and the export checks them in it.
    """

    metric: Metric = Metric("mse")
    margin: float = 0.05
    inference_batch: int = 1
    integer_io: bool = False
    image_classifier: ImageClassifierSpec | None = None

    def __post_init__(self):
        batch = self.inference_batch
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 4096:
            raise ValueError(f"ExportSpec(inference_batch={batch!r}): expected a whole number from 1 to 4096")
        if not isinstance(self.metric, Metric):
            raise ValueError(f"ExportSpec(metric={self.metric!r}): expected a Metric, e.g. Metric('accuracy', "
                             "higher_is_better=True)")
        if not self.margin >= 0:
            raise ValueError(f"ExportSpec(margin={self.margin!r}): expected a number of 0 or more")


#: the tfjs backends a page may be told to prefer
BACKENDS = ("wasm", "webgl", "webgpu", "cpu")


@dataclass(frozen=True)
class DeployInfo:
    """What a web page or a phone app needs to use an exported model beyond its tensors: the
    return value of :meth:`Experiment.deploy_info`, merged into every deploy manifest.

    ``description``
        each input and output in words (``{"image": "(1, 96, 96, 3) RGB in 0..255"}``); also
        written into the ``.tflite`` files' metadata.
    ``labels``
        the class names of a classifier's scores, in output order: the bundle's ``labels.txt``
        and the labels file MediaPipe reads from the ``.tflite`` metadata.
    ``vocabulary``
        the token of each id of a text model: the bundle's ``vocabulary.json``.
    ``intermediate_layers``
        layers whose outputs a page also shows (the addition page's hidden units): the
        exports add a second signature (TFLite) or output nodes (tfjs) for them.
    ``backend``
        the tfjs backend a page uses when the viewer has not chosen one (one of :data:`BACKENDS`).
    ``settings``
        everything else a page or an app reads, merged at the manifest's top level:
        ``preprocessing``, ``postprocessing``, ``generation``, ``stepping`` ...

    ``backend``, ``intermediate_layers``, ``labels`` and ``vocabulary`` are the page's; an
    app's bundle carries labels and vocabulary as files instead (:meth:`for_apps`).
    """

    description: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)
    intermediate_layers: list[str] = field(default_factory=list)
    backend: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    PAGE_ONLY: ClassVar[tuple[str, ...]] = ("backend", "intermediate_layers", "labels", "vocabulary")

    def __post_init__(self):
        for name in ("labels", "vocabulary", "intermediate_layers"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"DeployInfo({name}={value!r}): expected a list of strings")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(f"DeployInfo(backend={self.backend!r}): expected one of {', '.join(BACKENDS)} or None")
        clash = sorted(set(self.settings) & {f.name for f in dataclasses.fields(self)})
        if clash:
            raise ValueError(f"DeployInfo(settings=...) names '{clash[0]}', a field of its own; expected "
                             f"DeployInfo({clash[0]}=...)")

    def manifest(self) -> dict:
        """The fields a page's manifest gets (empty ones left out)."""
        named = {"description": self.description, "labels": list(self.labels), "vocabulary": list(self.vocabulary),
                 "intermediate_layers": list(self.intermediate_layers), "backend": self.backend}
        return {**{k: v for k, v in named.items() if v}, **self.settings}

    def for_apps(self) -> dict:
        """The fields an app bundle's ``model.json`` gets: the page's, without :attr:`PAGE_ONLY`."""
        return {k: v for k, v in self.manifest().items() if k not in self.PAGE_ONLY}


@dataclass
class SampleOptions:
    """Base of an experiment's ``tinkerflow sample`` options (``--name value`` flags)."""


class Experiment(abc.ABC):
    """One experiment, owning one run.

    Class attributes a subclass sets:

    ``name``
        the registered name, used in ``experiment=NAME`` and in run directory paths.
    ``Config``
        a dataclass deriving from :class:`ExperimentConfig`; its defaults are the
        experiment's defaults and it is the Hydra schema of the ``experiment`` node.
    ``Data``
        optionally, a dataclass for the root ``data`` node: where the data comes from
        (``data.source=... data.path=...``); the instance is :attr:`data`.
    ``Datasets``
        optionally, instead of ``Data``, ``{name: dataclass}``: data sets to choose from with
        ``data=NAME`` (the first is the default; each has a ``name`` field holding its key).
    ``Models``
        optionally, ``{name: dataclass}``: architectures to choose from with ``model=NAME``
        (the root ``model`` node, ``model.KEY=...``); each dataclass has a ``name`` field
        holding its key. The first is the default; the instance is :attr:`architecture`.
    ``SampleOptions``
        a dataclass of options for :meth:`sample`, exposed as ``tinkerflow sample`` flags.
    ``smoke_overrides``
        Hydra overrides that shrink a run to seconds (tiny data, a couple of epochs); the
        tests train every registered experiment with them.
    ``trainer_defaults``
        the ``trainer`` settings this experiment starts from instead of the global ones,
        e.g. ``{"epochs": 300, "learning_rate": 0.01, "steps_per_execution": 32}``; the
        command line still wins (``trainer.epochs=5``). Nested settings are dicts
        (``{"early_stopping": {"patience": 10}}``). Experiments with a config file of
        their own (the built-ins' ``conf/experiment/NAME.yaml``) set these there.
    ``config_dir``
        optionally, a folder beside the experiment's module holding Hydra config files, put
        on Hydra's search path: ``experiment/NAME.yaml`` (the experiment's own config file,
        in place of ``trainer_defaults``), ``sweep/NAME_grid.yaml`` (``+sweep=NAME_grid``),
        or anything else ``tinkerflow train`` overrides may name.
    ``description``
        one line shown by ``tinkerflow plugins``.
    ``widget_folder``
        the folder beside the experiment's module holding its page widget (default ``web``:
        ``widget.js``, ``widget.html``, ``widget.css``, and any other ``.js`` or ``.css``
        file ``widget.js`` imports by a relative path); two experiments of one package
        point at different folders.
    ``embed_height``
        the height in CSS pixels of the frame the page's embed snippet gives the widget
        (default 480; its embed view fits itself into the frame it gets).
    ``backends``
        the Keras backends this experiment's :meth:`fit` trains on, the fastest measured
        first: ``trainer.backend=auto`` (the default) takes the first one installed, and
        any other ``trainer.backend`` is refused before training (default
        ``("tensorflow", "jax")``; one whose model runs TensorFlow code lists only that).
    ``objective``
        the :class:`Metric` of the run a hyperparameter search (``hydra/sweeper=optuna``)
        optimises, with its direction; measured on validation data, never on the test set
        (default ``Metric("best_val_loss")``).
    ``export_spec``
        an :class:`ExportSpec`: the export's metric and margin, the deployed batch, integer
        inputs and outputs, image-classifier metadata.
    ``State``
        optionally, a :class:`DataState` subclass: what :meth:`load_data` learns from the
        data and every later method reads as :attr:`state` (see "The lifecycle" in
        docs/plugins.md for which method is called when, and with what).

    Everything an instance knows is given to its constructor: the validated, typed
    configs, the run, the :attr:`state` of a trained run, the checkpoint a resumed run
    continues from. No method relies on another having run first on the same instance.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    Data: ClassVar[type | None] = None
    Models: ClassVar[dict[str, type]] = {}
    Datasets: ClassVar[dict[str, type]] = {}
    SampleOptions: ClassVar[type] = SampleOptions
    smoke_overrides: ClassVar[tuple[str, ...]] = ()
    trainer_defaults: ClassVar[dict[str, Any]] = {}
    config_dir: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    widget_folder: ClassVar[str] = "web"
    embed_height: ClassVar[int] = 480
    backends: ClassVar[tuple[str, ...]] = ("tensorflow", "jax")
    objective: ClassVar[Metric] = Metric("best_val_loss")
    export_spec: ClassVar[ExportSpec] = ExportSpec()
    State: ClassVar[type[DataState] | None] = None

    def __init__(self, config: ExperimentConfig, trainer: TrainerConfig, seed: int = 0,
                 run: "Run | None" = None, data: Any = None, architecture: Any = None,
                 state: DataState | None = None, resumed: Any = None):
        if data is None and self.Datasets:
            data = next(iter(self.Datasets.values()))()
        self.data = data if data is not None or self.Data is None else self.Data()
        if architecture is None and self.Models:
            architecture = next(iter(self.Models.values()))()
        self.architecture = architecture
        self.config = config
        self.trainer = trainer
        self.seed = seed
        self.run = run
        self._state = state
        #: on a resumed run, the checkpoint it continues from (see :meth:`resume_into`)
        self.resumed = resumed
        #: anything the experiment needs to know on resuming; saved in every checkpoint
        self.checkpoint_extra: dict = {}
        self._resume_loaded = False

    @property
    def state(self) -> DataState:
        """What :meth:`load_data` learned from the data (an instance of :attr:`State`), as the
        core hands it back after :meth:`load_data` and when it opens a trained run."""
        if self._state is None:
            if self.run is not None:
                raise DataError(f"{self.run.path} has no learned.json; expected a {self.name} run whose training got "
                                "past load_data (it saves what the experiment learned from the data there)")
            raise DataError(f"this {self.name} experiment has no learned state; expected the one load_data returns "
                            "(Splits.state), handed back with with_state()")
        return self._state

    def with_state(self, state: DataState | None) -> "Experiment":
        """A copy of this experiment that knows ``state`` (the core's step after :meth:`load_data`)."""
        twin = copy.copy(self)
        twin._state = state
        return twin

    # -- data and model ----------------------------------------------------------------

    @abc.abstractmethod
    def load_data(self) -> Splits:
        """Load or generate the data and split it into train, validation and test."""

    @abc.abstractmethod
    def build_model(self) -> "keras.Model":
        """Build and compile the model (use :meth:`optimizer` for the trainer's optimizer)."""

    def optimizer(self) -> "keras.optimizers.Optimizer":
        """The optimizer named by ``trainer.optimizer`` at ``trainer.learning_rate``."""
        import keras

        classes = {
            "adam": keras.optimizers.Adam,
            "adamw": keras.optimizers.AdamW,
            "sgd": keras.optimizers.SGD,
            "rmsprop": keras.optimizers.RMSprop,
        }
        return classes[self.trainer.optimizer](learning_rate=self.trainer.learning_rate)

    def compile_options(self) -> dict:
        """Keyword arguments every ``model.compile`` call of this experiment should pass.

        Under JAX ``jit_compile`` is always on: without it Keras runs every step op by op
        in Python (measured on the addition model: 8 s per epoch instead of 0.04 s).
        """
        import keras

        jit = self.trainer.jit_compile or keras.backend.backend() == "jax"
        return {"steps_per_execution": self.trainer.steps_per_execution, "jit_compile": jit}

    # -- training ----------------------------------------------------------------------

    def callbacks(self) -> list:
        """The experiment's own Keras callbacks; by default early stopping and learning-rate
        reduction as the trainer config asks."""
        import keras

        callbacks = []
        plateau = self.trainer.reduce_lr
        if plateau.enabled:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=plateau.monitor, factor=plateau.factor, patience=plateau.patience, min_lr=plateau.min_lr,
            ))
        stop = self.trainer.early_stopping
        if stop.enabled:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=stop.monitor,
                patience=stop.patience,
                min_delta=stop.min_delta,
                restore_best_weights=stop.restore_best_weights,
            ))
        return callbacks

    def resume_into(self, model: "keras.Model") -> int:
        """The epoch training starts from: 0 for a new run; on a resumed run (the first call
        only) the checkpoint's weights and optimizer state are loaded into ``model`` and its
        epoch is returned (``trainer.epochs`` when training had already stopped early).

        A :meth:`fit` of its own calls this before training and passes the result to
        ``model.fit(initial_epoch=...)``; the runner restores everything else."""
        point = self.resumed
        if point is None or self._resume_loaded:
            return 0 if point is None else point.epoch
        point.load_into(model)
        self._resume_loaded = True
        return max(point.epoch, self.trainer.epochs) if point.stopped else point.epoch

    def initialize(self, model: "keras.Model") -> None:
        """Give a new run's ``model`` its starting weights from the seed, the same on every
        backend (:func:`tinkerflow.core.initial_weights.redraw`); the runner calls it after
        :meth:`build_model`. An experiment with pretrained layers overrides it to keep them."""
        initial_weights.redraw(model, self.seed)

    def fit(self, model: "keras.Model", data: Splits, callbacks: list) -> "keras.callbacks.History":
        """Train ``model`` for at most ``trainer.epochs`` epochs: ``model.fit``, or on the JAX
        backend with in-memory arrays the whole-epoch loop of :mod:`tinkerflow.core.jax_loop`
        (same batches and callbacks, several times faster on small models). In-memory arrays
        are visited in :func:`~tinkerflow.core.batch_order.epoch_order` on either path. A
        resumed run starts after its checkpoint's epoch (:meth:`resume_into`)."""
        start = self.resume_into(model)
        if self.trainer.loop == "auto" and jax_loop.supports(model, data.train, data.validation):
            return jax_loop.fit(model, data.train, data.validation, epochs=self.trainer.epochs,
                                batch_size=self.trainer.batch_size, callbacks=callbacks, seed=self.seed,
                                initial_epoch=start)
        kwargs: dict[str, Any] = {
            "epochs": self.trainer.epochs,
            "initial_epoch": start,
            "callbacks": callbacks,
            "verbose": 0,
        }
        if data.validation is not None:
            kwargs["validation_data"] = data.validation
        if isinstance(data.train, tuple):
            x, y = data.train
            batches, order = shuffled_batches(x, y, self.trainer.batch_size, self.seed, start)
            return model.fit(batches, **{**kwargs, "callbacks": [order, *callbacks], "shuffle": False})
        return model.fit(data.train, **kwargs)

    def evaluate(self, model: "keras.Model", data: Splits) -> dict[str, float]:
        """Measure the trained model on the test split; keys are reported as ``test_<metric>``."""
        split = data.test if data.test is not None else data.validation
        if split is None:
            return {}
        if isinstance(split, tuple):
            x, y = split
            values = model.evaluate(x, y, batch_size=self.trainer.batch_size, verbose=0, return_dict=True)
        else:
            values = model.evaluate(split, verbose=0, return_dict=True)
        return {f"test_{k}": float(v) for k, v in values.items()}

    # -- looking at a trained model -----------------------------------------------------

    def sample(self, model: "keras.Model", out_dir: Path, options: Any = None) -> dict:
        """Write the experiment's own look at a trained model (plots, text, images) to ``out_dir``.

        ``options`` is an instance of :attr:`SampleOptions`. Returns a summary (shown by
        ``tinkerflow sample`` and stored in ``run.json``); the default writes nothing.
        """
        return {}

    @classmethod
    def sweep_report(cls, runs: list[dict], out_dir: Path) -> list[str]:
        """Files comparing the finished runs of one sweep, for ``tinkerflow report``.

        ``runs`` has one dict per completed job: ``job``, ``path`` (the run directory),
        ``config`` (flattened, e.g. ``experiment.hidden``), ``metrics`` and ``samples`` (what
        :meth:`sample` returned). Write figures into ``out_dir`` and return their file names;
        the default adds nothing.
        """
        return []

    def custom_objects(self) -> dict:
        """Custom layers, losses and metrics the saved model needs to load (name -> object)."""
        return {}

    # -- export --------------------------------------------------------------------------

    def export_model(self, model: "keras.Model") -> "keras.Model":
        """The model exporters convert: e.g. an unrolled twin of a recurrent model, or only a
        GAN's generator. The default is the trained model itself."""
        return model

    def example_inputs(self) -> Any:
        """A few golden inputs for parity checks between Keras and the exported runtimes."""
        raise NotImplementedError(f"{type(self).__name__}.example_inputs")

    def representative_data(self) -> Iterable:
        """Batches of inputs for int8 calibration; the default reuses :meth:`example_inputs`."""
        yield self.example_inputs()

    def export_metric(self, predict: Callable[[Any], Any], data: Splits) -> float:
        """The experiment's own metric, computed through ``predict`` on validation data.

        ``predict`` takes inputs shaped like the split's ``x`` and returns the model's
        output (a list for several outputs); it may be Keras or an exported model in its
        runtime. The default is the mean squared error against the split's ``y``.
        """
        x, y = data.validation if data.validation is not None else data.test
        out = np.asarray(predict(x), dtype="float64")
        return float(np.mean((out - np.asarray(y, dtype="float64")) ** 2))

    def export_check(self, reference: dict, exported: dict, quantized: bool) -> dict | None:
        """The experiment's own check of an export on the golden inputs: ``reference`` and
        ``exported`` map output names to Keras' and the runtime's arrays. Return a record for
        ``export.json`` whose ``error`` key, when set, fails the variant; None checks nothing."""
        return None

    def deploy_info(self) -> DeployInfo:
        """What a web page or a phone app needs to use the exported model beyond its tensors
        (a :class:`DeployInfo`); goes into every deploy manifest."""
        return DeployInfo()
