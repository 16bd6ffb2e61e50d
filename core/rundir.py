"""Run directories: ``runs/<experiment>/<timestamp>/`` and what is inside.

::

    .hydra/          Hydra's own record of the composed config and overrides
    run.log          the log of the run
    run.json         status, error, versions, seed, git sha, timings, final metrics
    metrics.csv      one row per epoch
    model.keras      the trained model
    checkpoints/     the resume checkpoint, written during training
    .lock            held by the process writing the run (core/lock.py)
    samples/         the experiment's plots, generated text and images
    export/          exported bundles (tfjs, tflite) and their manifests
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunDirError

RUN_FILE = "run.json"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never
    see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` (on the same file system) where ``target`` is.

    Where the system can swap two paths in one step (Linux' ``renameat2`` with
    ``RENAME_EXCHANGE``) readers see either the old folder or the new one, never neither;
    elsewhere the old folder is renamed aside first. The old folder is then removed."""
    new, target = Path(new), Path(target)
    if target.exists() and _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now holds the old folder
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    try:
        import ctypes

        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def regular_files(folder: Path, root: Path) -> list[Path]:
    """Every file under ``folder``, each a regular file resolving inside ``root``.

    A run folder or a bundle may come from elsewhere: a symbolic link (to ``/etc/passwd``,
    say), a device, a FIFO or a socket among the files to copy is refused in one line
    naming it, so that nothing from outside ``root`` is ever copied into a site or bundle.
    """
    import stat

    folder, root = Path(folder), Path(root).resolve()
    paths = [folder]
    for top, dirs, names in os.walk(folder):
        paths += [Path(top) / name for name in sorted(dirs) + sorted(names)]
    found = []
    for path in paths:
        mode = path.lstat().st_mode
        inside = path.resolve().is_relative_to(root)
        if stat.S_ISDIR(mode) and inside:
            continue
        if not stat.S_ISREG(mode) or not inside:
            kind = "a symbolic link" if stat.S_ISLNK(mode) else (
                "outside the run" if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file")
            raise RunDirError(f"'{path}' is {kind}; expected only regular files inside '{root}' "
                              "(links, devices and pipes are never copied)")
        found.append(path)
    return found


def copy_regular(source: Path, target: Path) -> None:
    """Copy one regular file without following a link at ``source`` (see :func:`regular_files`)."""
    import stat

    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RunDirError(f"'{source}' is not a regular file; expected only regular files to copy")
        with open(target, "wb") as out:
            shutil.copyfileobj(handle, out)


def copy_tree_regular(folder: Path, target: Path, root: Path) -> None:
    """Copy ``folder`` to a new ``target``: regular files inside ``root`` only."""
    folder, target = Path(folder), Path(target)
    files = regular_files(folder, root)
    target.mkdir(parents=True)
    for path in files:
        destination = target / path.relative_to(folder)
        destination.parent.mkdir(parents=True, exist_ok=True)
        copy_regular(path, destination)


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
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed.append(item)
    return removed


def save_model_atomic(model: Any, path: Path, weights_only: bool = False) -> None:
    """Save a Keras model (with ``weights_only``, its and its optimizers' variables to a
    ``.weights.h5`` path) under a temporary name in the same folder, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        (model.save_weights if weights_only else model.save)(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_figure(figure: Any, path: Path, **options: Any) -> None:
    """``figure.savefig(path)`` through :func:`write_atomic` (the format from the suffix)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **options)
    write_atomic(path, buffer.getvalue())


def save_image(image: Any, path: Path, **options: Any) -> None:
    """A PIL image's ``save(path)`` through :func:`write_atomic` (the format from the suffix)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "JPEG"}.get(Path(path).suffix.lstrip(".").lower(), Path(path).suffix.lstrip(".").upper()),
               **options)
    write_atomic(path, buffer.getvalue())


def write_json_atomic(path: Path, payload: Any) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


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
        from .records import read_run_record

        return read_run_record(self.info_path)

    def update_info(self, **fields: Any) -> dict:
        info = self.read_info()
        info.update(fields)
        write_json_atomic(self.info_path, info)
        return info

    @classmethod
    def open(cls, path: Path | str) -> "Run":
        """Open an existing run directory; a one-line error if it is missing or not a run."""
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"run directory '{path}' does not exist; expected a path such as runs/addition/<timestamp>")
        if not path.is_dir():
            raise RunDirError(f"'{path}' is a file; expected a run directory such as runs/addition/<timestamp>")
        if not (path / RUN_FILE).is_file():
            raise RunDirError(f"'{path}' is not a run: it has no {RUN_FILE}; expected a directory made by 'tinkerflow train'")
        run = cls(path)
        info = run.read_info()
        run.experiment_name = info.get("experiment")
        if not run.experiment_name:
            raise RunDirError(f"{run.info_path}: no 'experiment' field; expected the record a run writes")
        return run

    def load_model(self, custom_objects: dict | None = None) -> Any:
        """The trained model, loaded with Keras safe mode on."""
        from .tf_quiet import import_keras

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


@dataclass
class RunResult:
    """How a run ended: handed to ``after_run`` and returned by the training job."""

    run_dir: Path
    experiment: str
    status: str = "running"
    metrics: dict = field(default_factory=dict)
    error: dict | None = None
    overrides: list = field(default_factory=list)
