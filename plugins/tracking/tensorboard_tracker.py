"""TensorBoard tracking (``tracking=tensorboard``): ``tensorboard --logdir runs/`` shows every run.

Each run writes its event files into ``<run>/tensorboard/``: every epoch's metrics through
Keras' own TensorBoard callback (``train/`` and ``validation/``, the epoch as step; on every
Keras backend), and when the run ends, in ``summary/``, its config as hyperparameters (the
HParams tab compares a sweep's jobs) with the final metrics beside them (``final/test_mse``...).
A resumed run goes on writing in the same folder from the epoch it resumes at. Nothing leaves the machine.
"""

from __future__ import annotations


from tinkerflow.core import TinkerflowError, hookimpl

from .flat import flat_config

NAME = "tensorboard"
LOGDIR = "tensorboard"


@hookimpl
def register_trackers(register):
    register(NAME, "TensorBoard: each epoch's metrics, the config as hyperparameters and the final metrics "
                   "in <run>/tensorboard/")


def _needs_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401  (tf.summary writes nothing without it)
    except ImportError:
        raise TinkerflowError("tracking=tensorboard needs the tensorboard package; expected "
                              "pip install 'tinkerflow[tracking]' (make main installs it)") from None


@hookimpl
def before_run(run):
    if run.tracks(NAME):
        _needs_tensorboard()


@hookimpl
def extra_callbacks(run, experiment):
    if not run.tracks(NAME):
        return None
    import keras

    return [keras.callbacks.TensorBoard(log_dir=str(run.path / LOGDIR), write_graph=False, update_freq="epoch",
                                        profile_batch=0)]


@hookimpl
def after_run(run, result):
    if not run.tracks(NAME) or not (run.path / LOGDIR).is_dir():
        return
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams

    writer = tf.summary.create_file_writer(str(run.path / LOGDIR / "summary"))
    try:
        with writer.as_default():
            hparams.hparams(flat_config(run.config.raw), trial_id=run.path.name)
            for name, value in result.metrics.items():
                tf.summary.scalar(f"final/{name}", float(value), step=0)
            tf.summary.text("status", f"{result.status}" + (f": {result.error.get('message')}" if result.error
                                                             else ""), step=0)
    finally:
        writer.close()
