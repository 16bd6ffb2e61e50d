"""One writer per run folder.

Whoever writes into a run folder — ``train`` (and ``--resume``), ``export``, ``sample``,
``bench`` — first holds an exclusive lock on ``<run>/.lock``; ``web`` holds a shared one
while it copies the run's exports (several sites can be built from one run at once, but
never while an export rewrites it). The lock is the kernel's (``flock``): it goes away with
the process holding it, so a run killed with SIGKILL can be resumed at once. A second
writer is refused in one line naming the process that holds the folder. Taking the lock
also checks the folder's whole tree for links (:func:`~.runfs.guarded`), so no command
touches a run through one.

Locks are re-entrant within a process: the CLI takes a run's lock before Hydra writes
``.hydra/`` and the job running in the same process takes it again.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import RunDirError
from .runfs import guarded, make_folder, remove_file

LOCK_FILE = ".lock"
#: a folder whose lock the parent process holds for this one (``train`` on JAX runs its
#: export in a TensorFlow subprocess while it waits)
LENT_LOCK = "TINKERFLOW_LENT_LOCK"

_held: dict[Path, list] = {}   # folder -> [fd, count, shared]
_guard = threading.Lock()
log = logging.getLogger("tinkerflow.lock")


def _holder(fd: int) -> str:
    """Which process holds the lock on ``fd``'s file (from Linux' /proc/locks)."""
    info = os.fstat(fd)
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        device, _, inode = fields[5].rpartition(":")
        if inode.isdigit() and int(inode) == info.st_ino:
            pid = fields[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                command = ""
            shown = " ".join(Path(w).name if i == 0 else w for i, w in enumerate(command.split()[1:3]))
            return f"process {pid}" + (f" ({shown} ...)" if shown else "")
    return "another process"


@contextmanager
def run_lock(folder: Path | str, shared: bool = False) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs (``shared``: a reader's lock).

    Raises :class:`RunDirError`, naming the process that holds the folder, when another
    process has it. The lock file stays empty: taking the lock changes no file.
    """
    key = Path(folder).resolve()
    if os.environ.get(LENT_LOCK) == str(key):
        with guarded(folder):
            yield
        return
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield
        finally:
            _release(key)
        return
    path = key / LOCK_FILE
    try:
        fd = _locked(path, shared, folder)
    except OSError as exc:
        if not key.is_dir() or (shared and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM)):
            yield  # nothing to guard: the command reports a missing folder; nobody can write a read-only one
            return
        if exc.errno == errno.ELOOP:
            raise RunDirError(f"'{path}' is a symbolic link; expected only regular files and folders inside "
                              f"'{folder}' (a folder from elsewhere is data: tinkerflow never reads or writes "
                              "through a link)") from None
        raise RunDirError(f"cannot open the lock {path} ({exc.strerror}); expected a writable run folder") from exc
    with _guard:
        _held[key] = [fd, 1, shared]
    try:
        with guarded(folder):
            yield
    finally:
        _release(key)


def _locked(path: Path, shared: bool, what: Path | str) -> int:
    """A descriptor of the lock file ``path`` (made if missing, never through a link) holding
    its flock; :class:`RunDirError` naming the holder of ``what`` when another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirError(f"'{what}' is in use by {holder}; expected it to finish first (a killed process "
                          "releases the folder at once)") from None
    return fd


@contextmanager
def site_lock(site: Path | str) -> Iterator[None]:
    """One builder per site: ``tinkerflow web --out SITE`` holds ``.SITE.lock`` beside the
    folder while it builds (the folder itself is swapped whole at the end) and removes it
    after. A process that opened the file just before it was removed holds a lock on a file
    no longer there; it sees so (another inode, or none, at the path) and takes a new one."""
    site = Path(site)
    path = site.parent / f".{site.name}.lock"
    while True:
        try:
            fd = _locked(path, False, site)
        except OSError as exc:
            raise RunDirError(f"cannot lock the site {site} ({exc.strerror}); expected a writable folder "
                              "for it") from exc
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        remove_file(path)  # while still held: see above
        os.close(fd)


@contextmanager
def cache_lock(path: Path | str, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made, with its folder, if missing; never
    through a link), waiting while another process holds it: one process at a time makes a
    shared cache entry, and the others then find it made. ``what`` names the entry in the
    line a waiting process logs."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise RunDirError(f"cannot open the lock {path} ({exc.strerror}); expected a writable cache folder "
                          "(a link there is never followed)") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for %s, which %s is making", what, _holder(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _release(key: Path) -> None:
    with _guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1]:
            return
        del _held[key]
    os.close(entry[0])  # closing the last descriptor releases the flock


def holds(folder: Path | str) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return Path(folder).resolve() in _held
