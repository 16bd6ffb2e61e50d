"""Run directories: ``runs/<experiment>/<timestamp>/`` and what is inside.

::

    .hydra/          Hydra's own record of the composed config and overrides
    run.log          the log of the run
    run.json         status, error, versions, seed, git sha, timings, final metrics
    metrics.csv      one row per epoch
    model.keras      the trained model
    learned.json     what the experiment learned from its data (core/learned.py)
    checkpoints/     the resume checkpoint, written during training
    .lock            held by the process writing the run (core/lock.py)
    samples/         the experiment's plots, generated text and images
    export/          exported bundles (tfjs, tflite) and their manifests
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunDirError
from .records import read_run_record
from .runfs import remove_file, remove_tree, write_json_atomic
from .tf_quiet import import_keras

RUN_FILE = "run.json"


#: what a killed process can leave: export work folders, folders being swapped, temporary files
LEFTOVER_PREFIXES = (".staging-", ".work-", ".final-", ".tmp-")


def clear_leftovers(run_path: Path) -> list[Path]:
    """Remove what killed processes left in a run (``.staging-*``, ``.work-*``, ``.final-*``
    and ``.NAME-old-PID`` folders under ``export/``, temporary ``.NAME.*.tmp`` and
    ``.tmp-*`` files); called by the commands that own the run. Returns what was removed."""
    run_path = Path(run_path)
    places = [run_path, run_path / "samples", run_path / "export"]
    places += [p for p in (run_path / "export").glob("*") if p.is_dir() and not p.is_symlink()]
    removed = []
    for place in places:
        if not place.is_dir() or place.is_symlink():
            continue
        for item in place.iterdir():
            name = item.name
            if not (name.startswith(LEFTOVER_PREFIXES) or (name.startswith(".") and name.endswith(".tmp"))
                    or (name.startswith(".") and "-old-" in name)):
                continue
            if item.is_dir() and not item.is_symlink():
                remove_tree(item)
            else:
                remove_file(item)
            removed.append(item)
    return removed


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for dist in ("tinkerflow", "tensorflow", "keras", "numpy", "hydra-core", "omegaconf", "pluggy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """The commit checked out where the run was launched, or None outside a git repository."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


class Run:
    """A run directory and its record (``run.json``)."""

    def __init__(self, path: Path | str, experiment_name: str | None = None):
        self.path = Path(path)
        self.experiment_name = experiment_name
        self.config: Any = None

    # -- well-known paths ----------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.path / RUN_FILE

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    # -- run.json ------------------------------------------------------------------------
    def read_info(self) -> dict:
        """``run.json`` checked by :func:`~.records.read_run_record` (``{}`` before it exists)."""
        return read_run_record(self.info_path)

    def update_info(self, **fields: Any) -> dict:
        info = self.read_info()
        info.update(fields)
        write_json_atomic(self.info_path, info)
        return info

    # -- what trackers keep of the run -------------------------------------------------------
    def tracks(self, tracker: str) -> bool:
        """Whether this run's config names ``tracker`` in ``tracking.use`` (``tracking=mlflow``)."""
        return self.config is not None and tracker in self.config.tracking.use

    def tracked(self, tracker: str) -> dict:
        """What ``tracker`` recorded of this run in ``run.json`` (``tracking.<tracker>``, e.g.
        the MLflow run id a resumed run or a later export continues); ``{}`` if nothing."""
        return dict((self.read_info().get("tracking") or {}).get(tracker) or {})

    def record_tracking(self, tracker: str, **fields: Any) -> None:
        """Merge ``fields`` into ``tracking.<tracker>`` of ``run.json``."""
        tracking = dict(self.read_info().get("tracking") or {})
        tracking[tracker] = {**(tracking.get(tracker) or {}), **fields}
        self.update_info(tracking=tracking)

    def note_tracking(self, tracker: str, problem: str) -> None:
        """Record that ``tracker`` could not record something (the first such problem is kept,
        with a count): ``tinkerflow train`` and ``export`` say so in one line at the end."""
        kept = self.tracked(tracker)
        self.record_tracking(tracker, problem=kept.get("problem") or problem, last_problem=problem,
                             problems=int(kept.get("problems", 0)) + 1)

    @classmethod
    def open(cls, path: Path | str) -> "Run":
        """Open an existing run directory; a one-line error if it is missing or not a run."""
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"run directory '{path}' does not exist; expected a path such as "
                              "runs/addition/<timestamp>")
        if not path.is_dir():
            raise RunDirError(f"'{path}' is a file; expected a run directory such as runs/addition/<timestamp>")
        if not (path / RUN_FILE).is_file():
            raise RunDirError(f"'{path}' is not a run: it has no {RUN_FILE}; expected a directory made by 'tinkerflow "
                              "train'")
        run = cls(path)
        info = run.read_info()
        run.experiment_name = info.get("experiment")
        if not run.experiment_name:
            raise RunDirError(f"{run.info_path}: no 'experiment' field; expected the record a run writes")
        return run

    def load_model(self, custom_objects: dict | None = None) -> Any:
        """The trained model, loaded with Keras safe mode on."""
        keras = import_keras()

        if not self.model_path.is_file():
            status = self.read_info().get("status", "unknown")
            raise RunDirError(f"run '{self.path}' has no model.keras (status: {status}); expected a completed run")
        try:
            return keras.saving.load_model(self.model_path, custom_objects=custom_objects, safe_mode=True)
        except Exception as exc:
            if "arbitrary code execution" in str(exc):
                raise RunDirError(f"{self.model_path}: it carries Python code (a Lambda layer or similar), which "
                                  "Keras safe mode refuses to load; expected a model.keras saved by 'tinkerflow train'"
                                  ) from exc
            detail = " ".join(str(exc).split())[:200]
            raise RunDirError(
                f"{self.model_path}: cannot load it ({type(exc).__name__}: {detail}); "
                "expected a model.keras saved by 'tinkerflow train'"
            ) from exc


def tracking_problems(path: Path) -> dict[str, int]:
    """How many problems each tracker has noted for the run at ``path`` so far."""
    try:
        tracking = Run(path).read_info().get("tracking") or {}
    except (RunDirError, OSError):
        return {}
    return {tracker: int(kept.get("problems") or 0) for tracker, kept in tracking.items()
            if isinstance(kept, dict) and str(kept.get("problems") or 0).isdigit()}


def tracking_notes(runs: list[Path], since: dict[str, int] | None = None) -> list[str]:
    """One line per tracker that could not record some of ``runs`` (what they noted in run.json);
    with ``since`` (one run's :func:`tracking_problems` before a command), only what that
    command added, by its latest problem."""
    problems: dict[str, list[tuple[Path, dict]]] = {}
    for path in runs:
        try:
            tracking = Run(path).read_info().get("tracking") or {}
        except (RunDirError, OSError):
            continue
        for tracker, kept in tracking.items():
            if not isinstance(kept, dict) or not kept.get("problem"):
                continue
            if since is None or tracking_problems(path).get(tracker, 0) > since.get(tracker, 0):
                problems.setdefault(tracker, []).append((path, kept))
    lines = []
    for tracker, found in sorted(problems.items()):
        path, kept = found[0]
        which = f"{len(found)} of {len(runs)} runs" if len(runs) > 1 else "the run"
        shown = (f"first: {kept['problem']}" if since is None
                 else f"latest: {kept.get('last_problem') or kept['problem']}")
        lines.append(f"tracking: {tracker} could not record everything of {which} ({shown}; "
                     f"{path / 'run.log'} has each); tracking.strict=true or --strict-tracking makes this an error")
    return lines


@dataclass
class Sweep:
    """A ``tinkerflow train -m``, as the ``before_sweep`` and ``after_sweep`` hooks see it."""

    folder: Path
    #: the command line's overrides (the sweeps in them unexpanded)
    overrides: list[str]
    #: the first job's typed config (its ``tracking`` section is the sweep's)
    config: Any = None
    #: ``--resume`` of an earlier sweep
    resumed: bool = False

    @property
    def tracking_path(self) -> Path:
        return self.folder / "tracking.json"

    def tracks(self, tracker: str) -> bool:
        """Whether the sweep's config names ``tracker`` in ``tracking.use``."""
        return self.config is not None and tracker in self.config.tracking.use


@dataclass
class RunResult:
    """How a run ended: handed to ``after_run`` and returned by the training job."""

    run_dir: Path
    experiment: str
    status: str = "running"
    metrics: dict = field(default_factory=dict)
    error: dict | None = None
    overrides: list = field(default_factory=list)
