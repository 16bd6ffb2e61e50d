"""Keras callbacks the runner adds to every run: progress display and metrics.csv (the
checkpoints are :mod:`tinkerflow.core.resume`'s)."""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
import time
from pathlib import Path

from .records import read_metrics_csv
from .runfs import write_atomic
from .tf_quiet import import_keras

keras = import_keras()


log = logging.getLogger("tinkerflow.train")


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.4g}"


class MetricsCSV(keras.callbacks.Callback):
    """``metrics.csv``: one row per epoch (epoch, every logged metric, seconds), the whole
    file rewritten through a rename after every epoch, so it is never cut off mid-row.

    With ``keep_epochs`` (a resumed run) the rows of those first epochs are kept and the
    rows of any later epoch, trained again now, are dropped."""

    def __init__(self, path: Path, keep_epochs: int = 0):
        super().__init__()
        self.path = Path(path)
        self._columns: list[str] = []
        self._rows: list[dict] = []
        self._started = 0.0
        if keep_epochs:
            self._rows = [row for row in read_metrics_csv(self.path) if row["epoch"] <= keep_epochs]
            self._columns = list(self._rows[0]) if self._rows else []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in sorted(logs.items())}}
        row["seconds"] = round(time.perf_counter() - self._started, 6)
        if not self._columns:
            self._columns = list(row)
        self._rows.append(row)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self._rows)
        write_atomic(self.path, buffer.getvalue())


class ProgressDisplay(keras.callbacks.Callback):
    """Epoch, step, metrics and ETA: a rich live display on a terminal, plain log lines
    (about twenty per run) otherwise, or nothing at all."""

    def __init__(self, mode: str = "auto", label: str = "train"):
        super().__init__()
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.label = label
        self._progress = None
        self._started = 0.0
        self._last_plain = 0.0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        if self.mode != "rich":
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[step]}"),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.label, total=self.params.get("epochs"), step="", metrics="")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        text = " ".join(f"{k}={_fmt(v)}" for k, v in logs.items() if k != "learning_rate")
        epochs = self.params.get("epochs") or 0
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch + 1, metrics=text)
        elif self.mode == "plain":
            now = time.perf_counter()
            if epoch == 0 or epoch + 1 == epochs or now - self._last_plain >= 5.0 or (
                epochs and (epoch + 1) % max(1, epochs // 20) == 0 and now - self._last_plain >= 1.0
            ):
                self._last_plain = now
                log.info("epoch %d/%d %s (%.1fs)", epoch + 1, epochs, text, now - self._started)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class RichStepProgress(ProgressDisplay):
    """ProgressDisplay that also shows the step within the epoch.

    A separate class because overriding a batch hook makes Keras synchronise after every
    step (measured: +50% time per epoch on the addition model), so it is used only when
    a person is watching a terminal.
    """

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None:
            steps = self.params.get("steps")
            done = min(batch + 1, steps) if steps else batch + 1
            self._progress.update(self._task, step=f"step {done}/{steps}" if steps else f"step {done}")


def progress_display(mode: str, label: str) -> ProgressDisplay:
    """The progress callback for ``trainer.progress`` (auto, rich, plain or none)."""
    if mode == "auto":
        mode = "rich" if sys.stderr.isatty() else "plain"
    return (RichStepProgress if mode == "rich" else ProgressDisplay)(mode, label)
