"""MLflow tracking (``tracking=mlflow``): each run an MLflow run, each sweep a parent run.

What a run gets: the composed config as flat params (``trainer.epochs``, the keys overrides
use), every epoch's metrics with the epoch as step (sent in the background, a few seconds of
epochs at a time), the final metrics, tags (experiment, plugin module, versions, git commit,
run folder, overrides, status and, for a failed run, its error) and, as artefacts,
``metrics.csv``, ``run.json``, the config, ``run.log`` and the samples. The store is ``tracking.uri``, by default ``sqlite:///<paths.runs>/mlflow.db``
made absolute, so that every job of a sweep, wherever it runs, writes to one file. The run's
ids are kept in ``run.json`` (``tracking.mlflow``): ``--resume`` continues the same MLflow run,
and sends the epochs of its checkpoint that a kill kept from the store.

A store that cannot be reached does not stop training: the first failure is logged to
run.log and noted in run.json, nothing more is sent for that run, and ``tinkerflow train``
says so in one line at the end; ``tracking.strict=true`` (``--strict-tracking``) fails the
run instead. MLflow's usage telemetry is off unless ``MLFLOW_DISABLE_TELEMETRY`` says otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinkerflow.core import TinkerflowError, hookimpl
from tinkerflow.core.lock import cache_lock
from tinkerflow.core.records import load_json, read_metrics_csv
from tinkerflow.core.runfs import make_folder, write_json_atomic

from .flat import flat_config

NAME = "mlflow"
#: a sweep's store and parent run, handed to its jobs (``before_sweep``)
STORE_ENV = "TINKERFLOW_MLFLOW_URI"
PARENT_ENV = "TINKERFLOW_MLFLOW_PARENT"
#: "<run folder>\t<store>" of the run this process trains, for an export in a child process (a JAX run's)
TRAINED_ENV = "TINKERFLOW_MLFLOW_TRAINED"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
PARAMS_PER_CALL = 100  # MLflow's limits for one log_batch
METRICS_PER_CALL = 1000
#: epochs are sent together at most this often: one call per epoch cost a short epoch 7%
SEND_EVERY_S = 5.0
PARAM_LENGTH = 6000
#: ``mlflow ui`` opens an experiment of this kind in its runs table, not its GenAI traces view
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
log = logging.getLogger("tinkerflow.tracking.mlflow")

_open: dict[Path, "Tracked"] = {}


@hookimpl
def register_trackers(register):
    register(NAME, "MLflow: the config as params, each epoch's metrics, tags, samples and exports; "
                   "a sweep as a parent run with a child per job")


def store_uri(config: Any) -> str:
    """The store a run logs to: ``tracking.uri``, else its sweep's, else the sqlite file under
    ``paths.runs``; a sqlite path made absolute (a relative one would follow each job's folder)."""
    uri = config.tracking.uri or os.environ.get(STORE_ENV) or f"sqlite:///{Path(config.paths.runs) / 'mlflow.db'}"
    scheme, _, rest = uri.partition("://")
    if scheme.lower() == "sqlite":
        path = Path(rest[1:]).resolve()  # sqlite:///x.db is relative, sqlite:////x.db absolute
        make_folder(path.parent)
        return f"sqlite:///{path}"
    return uri


def client(uri: str) -> Any:
    """An MLflow client of ``uri``: no telemetry, and a server that does not answer given up
    on after a few seconds rather than MLflow's minutes of retries."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial MLflow database tables..."
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    database = Path(uri.removeprefix("sqlite:///"))
    with cache_lock(database.with_name(f".{database.name}.lock"), f"the MLflow store {database}"):
        made = MlflowClient(tracking_uri=uri)  # the first client of a new file makes its tables: one at a time
        made.search_experiments(max_results=1)
    return made


def experiment_id(mlflow_client: Any, uri: str, name: str) -> str:
    """The id of the MLflow experiment ``name``, made if missing (a model-training experiment,
    artefacts beside a sqlite store, never in the working folder)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except Exception:
        found = mlflow_client.get_experiment_by_name(name)  # another job made it meanwhile
        if found is None:
            raise
        return found.experiment_id


def run_page(server: str, experiment: str, run_id: str) -> str:
    """The run's page in the MLflow UI of a tracking server (``tinkerflow web --tracking-links``)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def flat_params(config: dict) -> dict[str, str]:
    """The config as MLflow params: ``trainer.epochs`` -> ``"3"`` (lists as JSON)."""
    return {key: (value if isinstance(value, str) else json.dumps(value))[:PARAM_LENGTH]
            for key, value in flat_config(config).items()}


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


@dataclass
class Tracked:
    """One MLflow run (a tinkerflow run's, or a sweep's parent) while this process logs to it."""

    uri: str
    strict: bool
    #: records a problem where the command reads it back (``Run.note_tracking``)
    note: Any = None
    client: Any = None
    run_id: str | None = None
    #: the first thing that could not be sent; nothing more is tried for this run
    offline: str | None = None
    pending: list = field(default_factory=list)
    #: epochs' metrics not sent yet, and when epochs were last sent (``log_epoch``)
    unsent: list = field(default_factory=list)
    sent_at: float = -math.inf

    def send(self, what: str, call, *args, **kwargs) -> Any:
        if self.offline is not None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            self.failed(what, exc)
            return None

    def failed(self, what: str, exc: BaseException) -> None:
        problem = f"could not {what} at {self.uri}: {type(exc).__name__}: {_short(exc)}"
        log.warning("mlflow %s", problem)
        self.offline = problem
        if self.note is not None:
            self.note(NAME, problem)
        if self.strict:
            raise TinkerflowError(f"tracking: mlflow {problem}; expected a store that records "
                                  "(tracking.strict=true makes this an error)") from exc

    def log(self, metrics: dict[str, float] = (), params: dict[str, str] = (), tags: dict[str, str] = (),
            step: int = 0) -> None:
        if self.offline is not None or self.run_id is None:
            return
        from mlflow.entities import Param, RunTag

        batch = _metrics(metrics, step)
        param_items = [Param(k, v) for k, v in dict(params).items()]
        tag_items = [RunTag(k, str(v)) for k, v in dict(tags).items()]
        if not (batch or param_items or tag_items):
            return
        for start in range(0, max(len(param_items), 1), PARAMS_PER_CALL):
            chunk = param_items[start:start + PARAMS_PER_CALL]
            self.send("log to the run", self.client.log_batch, self.run_id, metrics=batch, params=chunk,
                      tags=tag_items)
            batch, tag_items = [], []

    def log_epoch(self, metrics: dict[str, float], step: int) -> None:
        """An epoch's metrics, sent in the background with the epochs since the last send, at
        most every :data:`SEND_EVERY_S` (the first epoch at once)."""
        if self.offline is not None or self.run_id is None:
            return
        self.unsent += _metrics(metrics, step)
        if time.monotonic() - self.sent_at >= SEND_EVERY_S:
            self._send_unsent()

    def _send_unsent(self) -> None:
        unsent, self.unsent, self.sent_at = self.unsent, [], time.monotonic()
        for start in range(0, len(unsent), METRICS_PER_CALL):
            operation = self.send("log epochs' metrics", self.client.log_batch, self.run_id,
                                  metrics=unsent[start:start + METRICS_PER_CALL], synchronous=False)
            if operation is not None:
                self.pending.append(operation)

    def flush(self) -> None:
        """Send the epochs not sent yet and wait for everything sent in the background; a
        failure among them is the run's first."""
        if self.offline is None and self.run_id is not None:
            self._send_unsent()
        pending, self.pending = self.pending, []
        for operation in pending:
            self.send("log epochs' metrics", operation.wait)


def _metrics(metrics: dict[str, float], step: int) -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in dict(metrics).items()
            if isinstance(v, (int, float)) and math.isfinite(v)]


def _tags(run: Any, info: dict) -> dict[str, str]:
    tags = {"mlflow.runName": f"{run.experiment_name} {run.path.name}",
            "tinkerflow.experiment": run.experiment_name,
            "tinkerflow.run_folder": str(run.path.resolve()),
            "tinkerflow.overrides": " ".join(info.get("overrides") or []) or "-",
            "tinkerflow.status": "running"}
    if (info.get("git") or {}).get("sha"):
        tags["mlflow.source.git.commit"] = info["git"]["sha"]
    for dist, version in (info.get("versions") or {}).items():
        tags[f"tinkerflow.version.{dist}"] = version
    parent = os.environ.get(PARENT_ENV, "")
    if RUN_ID.match(parent):
        tags["mlflow.parentRunId"] = parent
    return tags


@hookimpl
def before_run(run):
    if not run.tracks(NAME):
        return
    tracked = Tracked(store_uri(run.config), run.config.tracking.strict, run.note_tracking)
    _open[run.path] = tracked
    tracked.client = tracked.send("open the store", client, tracked.uri)
    if tracked.client is None:
        return
    name = run.config.tracking.experiment or run.experiment_name
    earlier = run.tracked(NAME)
    info = run.read_info()
    if earlier.get("uri") == tracked.uri and RUN_ID.match(str(earlier.get("run_id", ""))):
        tracked.run_id = earlier["run_id"]  # --resume: the same MLflow run
        _trained_here_as(run, tracked.uri)
        tracked.send("continue the run", tracked.client.update_run, tracked.run_id, status="RUNNING")
        tracked.log(tags={"tinkerflow.status": "running", "tinkerflow.resumes": str(len(info.get("resumes") or []))})
        return
    experiment = tracked.send("find the experiment", experiment_id, tracked.client, tracked.uri, name)
    if experiment is None:
        return
    made = tracked.send("start the run", tracked.client.create_run, experiment, tags=_tags(run, info))
    if made is None:
        return
    tracked.run_id = made.info.run_id
    run.record_tracking(NAME, uri=tracked.uri, experiment_id=str(experiment), run_id=tracked.run_id,
                        **({"url": run_page(tracked.uri, str(experiment), tracked.run_id)}
                           if tracked.uri.startswith(("http://", "https://")) else {}))
    tracked.log(params=flat_params(run.config.raw))
    _trained_here_as(run, tracked.uri)


def _trained_here_as(run: Any, uri: str) -> None:
    os.environ[TRAINED_ENV] = f"{run.path.resolve()}\t{uri}"  # its export, here or in a child process


@hookimpl
def extra_callbacks(run, experiment):
    tracked = _open.get(run.path)
    if tracked is None:
        return None
    tracked.log(tags={"tinkerflow.plugin": type(experiment).__module__})
    import keras

    if experiment.resumed is not None:
        _catch_up(tracked, experiment.resumed.history, experiment.resumed.epoch)

    class EpochMetrics(keras.callbacks.Callback):
        """Each epoch's logs as MLflow metrics, sent in the background (training does not wait)."""

        def on_epoch_end(self, epoch, logs=None):
            tracked.log_epoch(logs or {}, epoch)

        def on_train_end(self, logs=None):
            tracked.flush()  # inside fit: with tracking.strict, a store that failed fails the run

    return [EpochMetrics()]


def _catch_up(tracked: Tracked, history: dict[str, list], epochs: int) -> None:
    """On a resumed run, the epochs before its checkpoint that the store lacks (a run killed
    before its last epochs were sent), from the checkpoint's own history."""
    if tracked.offline is not None or tracked.run_id is None or not history:
        return
    key = "loss" if "loss" in history else sorted(history)[0]
    logged = tracked.send("read the run's history", tracked.client.get_metric_history, tracked.run_id, key)
    if logged is None:
        return
    after = max((m.step for m in logged), default=-1)
    for step in range(after + 1, epochs):
        tracked.unsent += _metrics({k: v[step] for k, v in history.items() if step < len(v)}, step)
    tracked.flush()


@hookimpl
def after_run(run, result):
    tracked = _open.pop(run.path, None)
    if tracked is None:
        return
    tracked.flush()
    if tracked.run_id is None:
        return
    info = run.read_info()
    tags = {"tinkerflow.status": result.status}
    if result.error:
        tags["tinkerflow.error"] = f"{result.error.get('stage')}: {result.error.get('type')}: " \
                                   f"{result.error.get('message')}"[:PARAM_LENGTH]
    try:  # a final value of an epoch metric goes after its epochs
        per_epoch = set().union(*read_metrics_csv(run.metrics_path))
    except TinkerflowError:
        per_epoch = set()
    tracked.log(metrics={k: v for k, v in result.metrics.items() if k not in per_epoch}, tags=tags)
    tracked.log(metrics={k: v for k, v in result.metrics.items() if k in per_epoch},
                step=int(info.get("epochs_run") or 0))
    for item, folder in (("metrics.csv", None), ("run.json", None), (".hydra/config.yaml", "config"),
                         ("samples", "samples"), ("run.log", None)):
        path = run.path / item
        if path.is_dir():
            tracked.send(f"upload {item}", tracked.client.log_artifacts, tracked.run_id, str(path), folder)
        elif path.is_file():
            tracked.send(f"upload {item}", tracked.client.log_artifact, tracked.run_id, str(path), folder)
    tracked.send("end the run", tracked.client.set_terminated, tracked.run_id, STATUS.get(result.status, "FAILED"))


@hookimpl
def after_export(run, report):
    kept = run.tracked(NAME)
    if not RUN_ID.match(str(kept.get("run_id", ""))):
        return
    uri = str(kept.get("uri", ""))
    if uri not in _stores_of(run):
        problem = (f"the export is not logged to {uri}, the store run.json names: a run folder's own record is not "
                   "enough to contact a store; expected it in MLFLOW_TRACKING_URI to log there")
        log.warning("mlflow: %s", problem)
        run.note_tracking(NAME, problem)
        return
    tracked = Tracked(uri, False, run.note_tracking, run_id=kept["run_id"])
    tracked.client = tracked.send("open the store", client, uri)
    if tracked.client is None:
        return
    export_json = run.path / "export.json"
    if export_json.is_file():
        tracked.send("upload export.json", tracked.client.log_artifact, tracked.run_id, str(export_json), "export")
    tracked.send("upload the parity table", tracked.client.log_text, tracked.run_id, parity_table(report.results),
                 "export/parity.md")
    for fmt, variants in report.results.items():
        for variant, record in variants.items():
            if fmt != "tflite" or record.get("status") != "passed":
                continue
            for entry in record.get("files", []):
                name = Path(str(entry.get("path", "")))
                path = run.export_dir / name
                if (path.suffix == ".tflite" and not name.is_absolute() and ".." not in name.parts and path.is_file()
                        and not path.is_symlink()):
                    tracked.send(f"upload {fmt}/{variant}", tracked.client.log_artifact, tracked.run_id, str(path),
                                 f"export/{fmt}/{variant}")
    if report.bundle is not None and Path(report.bundle).is_dir():
        tracked.send("upload the deploy bundle", tracked.client.log_artifacts, tracked.run_id, str(report.bundle),
                     "export/bundle")
    passed = sum(r.get("status") == "passed" for variants in report.results.values() for r in variants.values())
    tracked.log(tags={"tinkerflow.exported": f"{passed} variants passed"})


def _stores_of(run: Any) -> set[str]:
    """The stores an export may log to: the one this process (or its parent, for a JAX run's
    export) trained the run into, the user's own (``MLFLOW_TRACKING_URI``, a sweep's), and a
    sqlite file in a folder holding the run (the default store of its runs root) — never an
    address that only the run folder names."""
    stores = {os.environ.get("MLFLOW_TRACKING_URI", ""), os.environ.get(STORE_ENV, "")}
    folder, _, store = os.environ.get(TRAINED_ENV, "").partition("\t")
    if folder == str(run.path.resolve()):
        stores.add(store)
    for folder in list(run.path.resolve().parents)[:3]:
        stores.add(f"sqlite:///{folder / 'mlflow.db'}")
    return stores - {""}


def parity_table(results: dict) -> str:
    """The export's variants as a Markdown table: status, size, Keras-to-runtime difference, metric."""
    lines = ["| format | variant | status | bytes | max abs diff | metric: keras -> exported |",
             "|---|---|---|---|---|---|"]
    for fmt, variants in results.items():
        for variant, record in variants.items():
            size = sum(f.get("bytes", 0) for f in record.get("files", []))
            diff = (record.get("parity") or {}).get("max_abs_diff")
            metric = record.get("metric")
            shown = f"{metric['name']}: {metric['keras']:.4g} -> {metric['exported']:.4g}" if metric else "-"
            lines.append(f"| {fmt} | {variant} | {record.get('status')} | {size or '-'} | "
                         f"{f'{diff:.3g}' if diff is not None else '-'} | {shown} |")
    return "\n".join(lines) + "\n"


def _sweep_record(sweep: Any) -> dict:
    """What an earlier ``before_sweep`` kept in the sweep folder (``tracking.json``), if readable."""
    try:
        return dict((load_json(sweep.tracking_path, "the tracking.json tinkerflow writes", 64_000) or {}).get(NAME)
                    or {})
    except (TinkerflowError, AttributeError, TypeError, ValueError):
        return {}


@hookimpl
def before_sweep(sweep):
    if not sweep.tracks(NAME):
        return None
    uri = store_uri(sweep.config)
    tracked = Tracked(uri, sweep.config.tracking.strict)
    environment = {STORE_ENV: uri}
    tracked.client = tracked.send("open the store", client, uri)
    if tracked.client is None:
        return environment
    earlier = _sweep_record(sweep)
    if sweep.resumed and earlier.get("uri") == uri and RUN_ID.match(str(earlier.get("run_id", ""))):
        tracked.run_id = earlier["run_id"]
        tracked.send("continue the sweep's run", tracked.client.update_run, tracked.run_id, status="RUNNING")
    else:
        name = sweep.config.tracking.experiment or sweep.config.experiment_name
        experiment = tracked.send("find the experiment", experiment_id, tracked.client, uri, name)
        if experiment is None:
            return environment
        tags = {"mlflow.runName": f"{sweep.config.experiment_name} sweep {sweep.folder.name}",
                "tinkerflow.experiment": sweep.config.experiment_name, "tinkerflow.sweep": "true",
                "tinkerflow.sweep_folder": str(sweep.folder.resolve()),
                "tinkerflow.overrides": " ".join(sweep.overrides) or "-"}
        made = tracked.send("start the sweep's run", tracked.client.create_run, experiment, tags=tags)
        if made is None:
            return environment
        tracked.run_id = made.info.run_id
        write_json_atomic(sweep.tracking_path, {NAME: {"uri": uri, "experiment_id": str(experiment),
                                                       "run_id": tracked.run_id}})
        tracked.log(params={f"sweep.{o.split('=', 1)[0].lstrip('+~')}": o.split("=", 1)[-1][:PARAM_LENGTH]
                            for o in sweep.overrides if "=" in o})
    environment[PARENT_ENV] = tracked.run_id
    return environment


@hookimpl
def after_sweep(sweep, results):
    if not sweep.tracks(NAME):
        return
    kept = _sweep_record(sweep)
    if not RUN_ID.match(str(kept.get("run_id", ""))) or kept.get("uri") != store_uri(sweep.config):
        return
    tracked = Tracked(kept["uri"], False, run_id=kept["run_id"])
    tracked.client = tracked.send("open the store", client, tracked.uri)
    if tracked.client is None:
        return
    failed = sum(r.get("status") != "completed" for r in results)
    tracked.log(metrics={"jobs_completed": len(results) - failed, "jobs_failed": failed},
                tags={"tinkerflow.status": "completed" if not failed else f"{failed} of {len(results)} jobs failed"})
    tracked.send("end the sweep's run", tracked.client.set_terminated, tracked.run_id,
                 "FINISHED" if not failed else "FAILED")
