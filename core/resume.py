"""Resuming a run that was killed: what a checkpoint holds and how it is put back.

After every completed epoch (at most every ``trainer.checkpoint_seconds``) the run's
``checkpoints/`` folder gets::

    epoch-00012.npz          the model's and its optimizers' variables after epoch 12, as
                             arrays in a fixed order (runs checkpointed before 0.9 hold an
                             epoch-00012.weights.h5 of Keras' own, which still loads)
    best-00012.npz           early stopping's best weights, when it keeps them
    state.json               the epoch, the metrics of every epoch so far, the states of
                             early stopping, learning-rate reduction and the experiment's
                             own callbacks, the random generators' states, and the names
                             of the two files above

Each file is written under a temporary name and renamed; ``state.json`` is renamed last
and older files (and temporary ones a killed process left) are removed after it, so
whenever the process dies ``state.json`` names complete files. ``tinkerflow train --resume
RUN`` rebuilds the experiment from the run's config, loads the weights, restores the
states and trains on from the next epoch.
"""

from __future__ import annotations

import io
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RunDirError
from .records import read_checkpoint_state
from .runfs import make_folder, remove_file, write_atomic, write_json_atomic
from .tf_quiet import import_keras

keras = import_keras()

log = logging.getLogger("tinkerflow.train")

STATE_FILE = "state.json"
FORMAT = 1

#: the attributes that make up a Keras callback's progress (what ``on_train_begin`` resets)
CALLBACK_FIELDS = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


@dataclass
class ResumePoint:
    """A checkpoint read back: where training stopped and everything needed to go on."""

    folder: Path
    epoch: int
    weights: str
    history: dict = field(default_factory=dict)
    callbacks: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    stopped: bool = False
    best_weights: str | None = None

    @classmethod
    def read(cls, folder: Path) -> "ResumePoint | None":
        """The checkpoint in ``folder``; None when there is none. A state file that cannot be
        read, or names a missing weights file, is a one-line error."""
        path = Path(folder) / STATE_FILE
        state = read_checkpoint_state(path)
        if state is None:
            return None
        point = cls(folder=Path(folder), epoch=state.epoch, weights=state.weights, history=state.history,
                    callbacks=state.callbacks, rng=state.rng, extra=state.extra, stopped=state.stopped,
                    best_weights=state.best_weights)
        for name in (point.weights, point.best_weights):
            if name and (Path(name).name != name or not (point.folder / name).is_file()):
                raise RunDirError(f"{path} names '{name}', which is not in {point.folder}; expected the checkpoint's "
                                  "own files")
        return point

    def load_into(self, model: Any) -> None:
        """Put the saved variables (the model's and its optimizers') into ``model``."""
        build_optimizers(model)
        path = self.folder / self.weights
        try:
            if path.suffix == ".npz":
                load_variables(model, path)
            else:
                model.load_weights(path)
        except RunDirError:
            raise
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]
            raise RunDirError(f"{self.folder / self.weights}: cannot load it into the model ({type(exc).__name__}: "
                              f"{detail}); expected the checkpoint of this run's model") from exc


def build_optimizers(model: Any) -> None:
    """Create the optimizers' variables, so that saved optimizer state has somewhere to go.

    A model with several optimizers (a GAN) provides ``build_optimizers()`` itself."""
    own = getattr(model, "build_optimizers", None)
    if callable(own):
        own()
    elif getattr(model, "optimizer", None) is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def checkpoint_variables(model: Any) -> list:
    """The variables a checkpoint holds, in a fixed order: the model's weights, then those of
    ``model.optimizer`` and of any other optimizer the model keeps as an attribute (a GAN's)."""
    optimizers = [getattr(model, "optimizer", None)] + [value for _, value in sorted(vars(model).items())]
    found: dict[int, Any] = {}
    for optimizer in optimizers:
        if isinstance(optimizer, keras.optimizers.Optimizer) and optimizer.built:
            found.setdefault(id(optimizer), optimizer)
    return list(model.weights) + [v for optimizer in found.values() for v in optimizer.variables]


def save_variables(model: Any, path: Path) -> None:
    """Write :func:`checkpoint_variables` to ``path`` as one .npz (atomically, synced)."""
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(checkpoint_variables(model))}
    write_atomic(path, _npz_bytes(arrays))


def load_variables(model: Any, path: Path) -> None:
    """Read a :func:`save_variables` file back into ``model`` (built, optimizers built)."""
    variables = checkpoint_variables(model)
    with np.load(path, allow_pickle=False) as saved:
        names = sorted(saved.files)
        if names != [f"v{i:05d}" for i in range(len(variables))]:
            raise RunDirError(f"{path} holds {len(names)} arrays where this run's model and optimizers have "
                              f"{len(variables)} variables; expected the checkpoint of this run's model")
        arrays = [saved[name] for name in names]
    for index, (variable, array) in enumerate(zip(variables, arrays)):
        if tuple(array.shape) != tuple(variable.shape):
            raise RunDirError(f"{path}: array {index} has shape {tuple(array.shape)} where {variable.path} has "
                              f"{tuple(variable.shape)}; expected the checkpoint of this run's model")
    for variable, array in zip(variables, arrays):
        variable.assign(array.astype(variable.dtype))


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _seed_variables(model: Any) -> list:
    """The model's seed generators' states, in the model's order (their names are numbered
    per process, the order is not)."""
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def capture_rng(model: Any) -> dict:
    """The states of Python's, NumPy's and Keras' random generators and of the model's own
    seed generators (dropout, augmentation, noise)."""
    from keras.src.random.seed_generator import global_seed_generator

    return {
        "python": _python_state(),
        "numpy": _numpy_state(),
        "keras": np.asarray(global_seed_generator().state.value).tolist(),
        "model": [np.asarray(v.value).tolist() for v in _seed_variables(model)],
    }


def restore_rng(model: Any, state: dict) -> None:
    from keras.src.random.seed_generator import global_seed_generator

    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "keras" in state:
        generator = global_seed_generator()
        generator.state.assign(np.asarray(state["keras"], dtype=generator.state.dtype))
    variables, saved = _seed_variables(model), state.get("model") or []
    if len(variables) == len(saved):
        for variable, value in zip(variables, saved):
            variable.assign(np.asarray(value, dtype=variable.dtype))


def _key(index: int, callback: Any) -> str:
    return f"{index}:{type(callback).__name__}"


class ResumeCheckpoint(keras.callbacks.Callback):
    """Write the resume checkpoint after completed epochs, and on a resumed run put the
    callbacks' and random generators' states back when training begins.

    ``callbacks`` are the run's other callbacks (their progress is saved); ``experiment``
    supplies ``checkpoint_extra`` (a dict saved as is); ``point`` is the checkpoint a
    resumed run starts from. ``history`` holds every epoch's logs, including those from
    before a resume.
    """

    def __init__(self, folder: Path, seconds: float, callbacks: list, experiment: Any = None,
                 point: ResumePoint | None = None):
        super().__init__()
        self.folder = Path(folder)
        self.seconds = seconds
        self.others = [cb for cb in callbacks if cb is not self]
        self.experiment = experiment
        self.point = point
        self.epochs = point.epoch if point else 0
        self.history: dict[str, list] = {k: list(v) for k, v in (point.history if point else {}).items()}
        self._saved_epoch = self.epochs
        self._last = time.monotonic()
        self._restored = point is None

    def on_train_begin(self, logs=None):
        if self._restored:
            return
        self._restored = True
        for index, callback in enumerate(self.others):
            state = self.point.callbacks.get(_key(index, callback))
            if state is not None:
                _restore_callback(callback, state, self.point.folder)
        restore_rng(self.model, self.point.rng)
        log.info("resumed after epoch %d", self.point.epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if time.monotonic() - self._last >= self.seconds or self.model.stop_training:
            self.save()

    def on_train_end(self, logs=None):
        if self._saved_epoch != self.epochs:
            self.save()

    def save(self) -> None:
        """Write the checkpoint of the epochs completed so far."""
        epoch = self.epochs
        make_folder(self.folder)
        weights = f"epoch-{epoch:05d}.npz"
        save_variables(self.model, self.folder / weights)
        callbacks, best = {}, None
        for index, callback in enumerate(self.others):
            state, arrays = _callback_state(callback)
            if state is not None:
                callbacks[_key(index, callback)] = state
            if arrays is not None:
                best = f"best-{epoch:05d}.npz"
                buffer = _npz_bytes(arrays)
                write_atomic(self.folder / best, buffer)
                state["best_weights"] = best
        write_json_atomic(self.folder / STATE_FILE, {
            "format": FORMAT,
            "epoch": epoch,
            "weights": weights,
            "best_weights": best,
            "stopped": bool(self.model.stop_training),
            "history": self.history,
            "callbacks": callbacks,
            "rng": capture_rng(self.model),
            "extra": dict(getattr(self.experiment, "checkpoint_extra", None) or {}),
        })
        for stale in self.folder.iterdir():  # older checkpoints, and temporary files of a killed process
            if stale.name not in (STATE_FILE, weights, best):
                remove_file(stale)
        self._saved_epoch = epoch
        self._last = time.monotonic()


def _npz_bytes(arrays: list | dict) -> bytes:
    buffer = io.BytesIO()
    if isinstance(arrays, dict):
        np.savez(buffer, **arrays)
    else:
        np.savez(buffer, *[np.asarray(a) for a in arrays])
    return buffer.getvalue()


def _callback_state(callback: Any) -> tuple[dict | None, list | None]:
    """A callback's progress: its own ``resume_state()``, or the known fields of a Keras
    callback; plus early stopping's best weights, if it holds them."""
    own = getattr(callback, "resume_state", None)
    if callable(own):
        return {"own": own()}, None
    fields = CALLBACK_FIELDS.get(type(callback).__name__)
    if fields is None:
        return None, None
    state = {name: _plain(getattr(callback, name, None)) for name in fields}
    arrays = getattr(callback, "best_weights", None)
    return state, (list(arrays) if arrays is not None else None)


def _restore_callback(callback: Any, state: dict, folder: Path) -> None:
    if "own" in state:
        callback.restore_state(state["own"])
        return
    for name in CALLBACK_FIELDS.get(type(callback).__name__, ()):
        if name in state:
            setattr(callback, name, state[name])
    if state.get("best_weights"):
        name = str(state["best_weights"])
        if Path(name).name != name or not (folder / name).is_file():
            raise RunDirError(f"{folder / STATE_FILE} names the best weights '{name}', which are not in {folder}; "
                              "expected the checkpoint's own files")
        with np.load(folder / name, allow_pickle=False) as saved:
            callback.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value
