"""A sweep's run directory: who owns it, and who may drive it now (its layout, the names
of every file and folder, is ``trainer.layout``).

``<storage>/<name>/`` belongs to steadytune only if it carries the marker file
``.steadytune-run``: a non-empty directory without it (a user's project folder named by
mistake, a typo in ``storage``) is refused before anything is written there, so a sweep
never overwrites a file it did not write. Output directories of ``steadytune train`` and
``steadytune report --out`` carry their own markers for the same reason.

One driver at a time: ``DriverLock`` holds an ``fcntl`` lock on ``.driver.lock`` for the
driver's lifetime and writes its PID there, so a second ``sweep``/``resume`` names the
process that holds it. The kernel drops the lock when the process dies (even by SIGKILL),
so a killed driver's lock is taken over by the next one without any guessing about
stale PIDs; the next driver then cleans what the dead one left (its Ray processes).
Remote run dirs (``s3://``) have neither marker checks nor a lock: object stores offer
no lock to take, and docs/sweeps.md says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

from trainer.errors import ConfigError, UserInputError
from trainer.layout import (
    CHECKPOINT_DIR,
    ENSEMBLES_FILE,
    GRID_EXPERIMENT,
    LOCK_FILE,
    LOGITS_FILE,
    MODEL_FILE,
    OLD_CHECKPOINT_DIR,
    OPTUNA_DB,
    OPTUNA_EXPERIMENT,
    RAY_DIR,
    RAY_POINTER_FILE,
    REPORT_DIR,
    REPORT_MARKER,
    RESULT_FILE,
    RESULTS_FILE,
    RUN_MARKER,
    SWEEP_FILE,
    TRIALS_DIR,
)

# re-exported for sweeps/cli/train.py until it imports trainer.layout itself

# What a run directory written by steadytune 0.1 (before the marker) may hold; such a
# directory is adopted (and marked) rather than refused, so an existing run resumes.
_LEGACY_RUN_ENTRIES = frozenset(
    {SWEEP_FILE, RESULTS_FILE, TRIALS_DIR, GRID_EXPERIMENT, OPTUNA_EXPERIMENT, RAY_DIR,
     RAY_POINTER_FILE, OPTUNA_DB, REPORT_DIR, ENSEMBLES_FILE}
)  # fmt: skip
# What a `steadytune train --out` directory of 0.1 may hold (no marker then).
_LEGACY_TRAIN_ENTRIES = frozenset(
    {RESULT_FILE, LOGITS_FILE, CHECKPOINT_DIR, OLD_CHECKPOINT_DIR, MODEL_FILE}
)


def is_remote(run_dir: str | Path) -> bool:
    return "://" in str(run_dir) and not str(run_dir).startswith("file://")


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (what a new directory is made in)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | Path, what: str) -> None:
    """Refuse a directory we could not create or write, leaving nothing behind.

    ``path`` may not exist yet: then its nearest existing ancestor must be a directory
    a directory can be made in — tried, not inferred from permission bits (root may
    "write" ``/proc`` and a read-only mount says writable): a probe directory is made
    there and removed. ``what`` names the setting in the message (``'storage'``,
    ``--out``).
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{what} {str(path)!r} is a file, not a directory")
    except OSError as exc:  # ENAMETOOLONG: the path itself cannot be looked up
        raise ConfigError(f"{what} {str(path)[:80]!r}… cannot be used: {exc.strerror} "
                          f"({len(str(path).encode())} bytes)") from None  # fmt: skip
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise ConfigError(
            f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} is not writable (no write permission on "
                          f"{str(existing)!r})")  # fmt: skip
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".steadytune-probe-", dir=existing))
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be created: making a directory in "
                          f"{str(existing)!r} fails ({exc.strerror})") from None  # fmt: skip


def check_owned(path: str | Path, marker: str, what: str) -> None:
    """Refuse a non-empty directory that steadytune did not create (no ``marker``).

    Nothing is written: use ``claim`` once the run is going ahead.
    """
    path = Path(path)
    if not path.is_dir() or (path / marker).is_file():
        return
    entries = {p.name for p in path.iterdir()}
    legacy = _LEGACY_RUN_ENTRIES if marker == RUN_MARKER else _LEGACY_TRAIN_ENTRIES
    if not entries or (entries <= legacy and marker != REPORT_MARKER and _has_core(path, marker)):
        return
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise ConfigError(
        f"{what} {str(path)!r} is a non-empty directory that steadytune did not create "
        f"(it holds {shown}; no {marker} marker); steadytune never writes into such a "
        "directory: choose another one"
    )


def _has_core(path: Path, marker: str) -> bool:
    """A legacy directory must hold the file that made it ours (sweep.json / result.json
    or a checkpoint), not merely names that happen to match."""
    if marker == RUN_MARKER:
        return (path / SWEEP_FILE).is_file()
    return (path / RESULT_FILE).is_file() or (path / CHECKPOINT_DIR).is_dir()


def claim(path: str | Path, marker: str, what: str) -> Path:
    """Create ``path`` (owner-only) if needed and mark it as steadytune's."""
    path = Path(path)
    check_owned(path, marker, what)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = path / marker
    if not stamp.is_file():
        stamp.write_text(json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return path


def move_aside(run_dir: str | Path) -> Path | None:
    """``--restart``: rename the run dir to ``<run dir>.old-<time>`` (never delete it)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return None
    check_owned(run_dir, RUN_MARKER, "the run directory")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
    os.rename(run_dir, target)
    return target


class DriverLock:
    """An exclusive ``fcntl`` lock on ``<run dir>/.driver.lock`` while a driver runs."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as written by them (PID, host, start time)."""
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "an unknown process"
        return f"PID {info.get('pid')} on {info.get('host')} since {info.get('since')}"

    def acquire(self) -> DriverLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserInputError(
                f"{self.path.parent} is in use by another steadytune driver "
                f"({self.holder()}); wait for it to finish, or stop it first"
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
