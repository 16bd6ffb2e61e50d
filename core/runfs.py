"""Every file tinkerflow writes, moves or deletes goes through this module.

A run folder, a sweep or a site may come from elsewhere (a tarball, a cloned repository, a
Ray worker's disk), so what it holds is data: a symbolic link in it must never make
tinkerflow write, move, delete or read anything outside it. Two checks keep that true:

* **When a folder is taken** (:func:`guarded`, entered by :func:`~.lock.run_lock` for every
  command that reads or writes a run or a sweep, and by ``web`` for the site it builds),
  its whole tree is walked without following links: a symbolic link, FIFO, socket or
  device anywhere in it is refused in one line naming the path, before anything is written.
  A run made by tinkerflow holds regular files and folders only.
* **On every write** (the helpers below), each path component between the guarded folder
  and the file is checked with ``lstat``: a link that appeared since (or that a plugin
  made) is refused the same way, so no helper ever writes through one.

``tests/test_links.py`` fails when project code writes, moves or deletes a file without
these helpers, and replaces every folder and file a command touches with a link to a
victim folder, asserting the victim is unchanged.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RunDirError

#: the most entries a guarded folder may hold (a large sweep holds tens of thousands)
MAX_ENTRIES = 500_000

_roots: dict[str, int] = {}   # resolved folder -> how many holders
_roots_lock = threading.Lock()


# -- guarded folders --------------------------------------------------------------------

def check_tree(root: Path | str) -> None:
    """Refuse ``root`` if anything below it is not a real folder or a regular file.

    Links are never followed; the first one found (or FIFO, socket, device) is a
    :class:`RunDirError` naming it."""
    root = Path(root)
    if not root.is_dir():
        return
    seen = 0
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise RunDirError(f"'{folder}' cannot be listed ({exc.strerror}); expected a readable folder") from exc
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                raise RunDirError(f"'{root}' holds more than {MAX_ENTRIES:,} files and folders; expected a run or "
                                  "sweep tinkerflow made")
            path = Path(entry.path)
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif not stat.S_ISREG(mode):
                refuse(path, root, mode)


def refuse(path: Path, root: Path, mode: int | None = None) -> None:
    """Raise the one-line refusal for ``path``, which is a link or not a regular file."""
    if mode is None:
        mode = os.lstat(path).st_mode
    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file or folder (a FIFO, socket or device)"
    raise RunDirError(f"'{path}' is {kind}; expected only regular files and folders inside '{root}' "
                      "(a folder from elsewhere is data: tinkerflow never reads or writes through a link)")


@contextmanager
def guarded(root: Path | str, check: bool = True) -> Iterator[None]:
    """While the block runs, every helper here refuses to write below ``root`` through a
    link; on entry (``check``) the tree is walked by :func:`check_tree`."""
    key = os.path.realpath(root)
    if check:
        check_tree(root)
    with _roots_lock:
        _roots[key] = _roots.get(key, 0) + 1
    try:
        yield
    finally:
        with _roots_lock:
            _roots[key] -= 1
            if not _roots[key]:
                del _roots[key]


def checked(path: Path | str, folder: bool = False) -> Path:
    """``path``, after checking that no component between its guarded folder and it is a
    link (with ``folder``, ``path`` itself too, when it exists). Paths outside every guarded
    folder are returned as they are: links above a run (``runs/`` on another disk) are the
    user's own."""
    path = Path(path)
    if not _roots:
        return path
    absolute = Path(os.path.abspath(path))
    below: list[Path] = [absolute] if folder else []
    for ancestor in absolute.parents:
        if os.path.realpath(ancestor) in _roots:
            for component in reversed(below):
                try:
                    mode = os.lstat(component).st_mode
                except FileNotFoundError:
                    break
                if not stat.S_ISDIR(mode):
                    refuse(component, ancestor, mode)
            return path
        below.append(ancestor)
    return path


# -- writing ----------------------------------------------------------------------------

def make_folder(path: Path | str) -> Path:
    """``mkdir -p``, refusing a link on the way (see :func:`checked`)."""
    path = checked(path, folder=True)
    path.mkdir(parents=True, exist_ok=True)
    return checked(path, folder=True)


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never
    see a half-written file (a link at ``path`` is replaced, never followed)."""
    path = checked(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` (the file being written), as a full disk's error does not."""
    return OSError(exc.errno, exc.strerror, str(path)) if exc.errno is not None else exc


def write_json_atomic(path: Path | str, payload: Any) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def save_model_atomic(model: Any, path: Path | str, weights_only: bool = False) -> None:
    """Save a Keras model (with ``weights_only``, its and its optimizers' variables to a
    ``.weights.h5`` path) under a temporary name in the same folder, then rename it."""
    path = checked(path)
    make_folder(path.parent)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        (model.save_weights if weights_only else model.save)(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_figure(figure: Any, path: Path | str, **options: Any) -> None:
    """``figure.savefig(path)`` through :func:`write_atomic` (the format from the suffix)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **options)
    write_atomic(path, buffer.getvalue())


def save_image(image: Any, path: Path | str, **options: Any) -> None:
    """A PIL image's ``save(path)`` through :func:`write_atomic` (the format from the suffix)."""
    suffix = Path(path).suffix.lstrip(".")
    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "JPEG"}.get(suffix.lower(), suffix.upper()), **options)
    write_atomic(path, buffer.getvalue())


def save_arrays(path: Path | str, **arrays: Any) -> None:
    """NumPy arrays as a compressed ``.npz`` through :func:`write_atomic`."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def copy_file(source: Path | str, target: Path | str) -> None:
    """Copy one of tinkerflow's own files (a page asset, a runtime build) to ``target``."""
    target = checked(target)
    make_folder(target.parent)
    if target.is_symlink():
        refuse(target, target.parent)
    shutil.copyfile(source, target)


def copy_regular(source: Path | str, target: Path | str) -> None:
    """Copy one regular file without following a link at ``source`` (see :func:`regular_files`)."""
    target = checked(target)
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RunDirError(f"'{source}' is not a regular file; expected only regular files to copy")
        try:
            out_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with os.fdopen(out_fd, "wb") as out:
                shutil.copyfileobj(handle, out)
        except OSError as exc:  # a full disk names the copy, not the file copied
            raise _naming(exc, target) from None


def regular_files(folder: Path | str, root: Path | str) -> list[Path]:
    """Every file under ``folder``, each a regular file resolving inside ``root``.

    A symbolic link (to ``/etc/passwd``, say), a device, a FIFO or a socket among the files
    to copy is refused in one line naming it, so that nothing from outside ``root`` is ever
    copied into a site or bundle."""
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


def copy_tree_regular(folder: Path | str, target: Path | str, root: Path | str) -> None:
    """Copy ``folder`` to a new ``target``: regular files inside ``root`` only."""
    folder, target = Path(folder), checked(target, folder=True)
    files = regular_files(folder, root)
    target.mkdir(parents=True)
    for path in files:
        destination = target / path.relative_to(folder)
        make_folder(destination.parent)
        copy_regular(path, destination)


# -- moving and deleting ----------------------------------------------------------------

def move(source: Path | str, target: Path | str) -> None:
    """Rename ``source`` to ``target`` (same file system); both paths are checked."""
    os.replace(checked(source), checked(target))


def remove_file(path: Path | str) -> None:
    """Delete one file (a link is removed itself, never what it points to)."""
    checked(path).unlink(missing_ok=True)


def remove_tree(path: Path | str) -> None:
    """Delete a folder and what is in it; a link there is refused, not followed."""
    path = checked(path, folder=True)
    if path.is_symlink():
        refuse(path, path.parent)
    shutil.rmtree(path, ignore_errors=True)


def make_staging(parent: Path | str, prefix: str) -> Path:
    """A new, empty folder with a unique name under ``parent`` (``mkdtemp``), checked."""
    parent = make_folder(parent)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


@contextmanager
def temporary_folder(parent: Path | str, prefix: str) -> Iterator[Path]:
    """A :func:`make_staging` folder for the block, removed afterwards."""
    folder = make_staging(parent, prefix)
    try:
        yield folder
    finally:
        remove_tree(folder)


def replace_folder(new: Path | str, target: Path | str) -> None:
    """Put the folder ``new`` (on the same file system) where ``target`` is.

    Where the system can swap two paths in one step (Linux' ``renameat2`` with
    ``RENAME_EXCHANGE``) readers see either the old folder or the new one, never neither;
    elsewhere the old folder is renamed aside first. The old folder is then removed. A
    link at ``target`` is refused."""
    new, target = checked(new, folder=True), checked(target, folder=True)
    if target.is_symlink():
        refuse(target, target.parent)
    if target.exists() and _exchange(new, target):
        remove_tree(new)  # now holds the old folder
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        remove_tree(old)


def _exchange(a: Path, b: Path) -> bool:
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
