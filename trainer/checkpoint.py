"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a directory holding one ``state.pt``: a plain dict (as nanoGPT's)
of tensors, numbers and strings — model, optimizer, scheduler, strategy state, RNG
states, the step (which fixes the data position) and the evaluation history. It is
written to a temporary directory and renamed into place, so a process killed
mid-write leaves the previous checkpoint intact.

A checkpoint can still be damaged behind our back (a full disk, a bad copy from remote
storage, a foreign file). One that cannot be read is moved aside, never deleted — it may
be worth a look — and the run falls back to the previous checkpoint or to a fresh start,
which ends with the same numbers (a trial is a pure function of its config). Retrying
on the same bad file would fail the same way forever.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from trainer.layout import STATE_FILE, corrupt_dir, old_dir

__all__ = [
    "CorruptCheckpointWarning",
    "CorruptResultWarning",
    "load_checkpoint",
    "save_aside",
    "save_checkpoint",
]


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint could not be used and was moved aside; the run recovers without it."""


class CorruptResultWarning(UserWarning):
    """A finished run's ``result.json`` could not be read and was moved aside; the run
    trains anew (a trial is a pure function of its config: the same result comes back)."""


def save_checkpoint(state: dict[str, Any], directory: Path) -> Path:
    """Write ``state`` to ``directory/state.pt`` atomically and return ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    torch.save(state, staging / STATE_FILE)
    old = old_dir(directory)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(directory, old)
    os.rename(staging, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def _read(path: Path, required: Iterable[str]) -> dict[str, Any]:
    """The state in ``path``; raises if it cannot be unpickled or is not one of ours."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise ValueError("not a steadytune checkpoint (no config dict)")
    missing = sorted(set(required) - state.keys())
    if missing:
        raise ValueError(f"missing keys {missing}")
    return state


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: torch's read errors span several lines."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def save_aside(path: Path) -> Path:
    """Rename an unreadable file or directory to the first free ``<name>.corrupt-<n>``
    beside it: never deleted, never trusted."""
    return _move_aside(path, path)


def _move_aside(candidate: Path, directory: Path) -> Path:
    """Rename ``candidate`` to the first free ``<directory>.corrupt-<n>`` beside it."""
    n = 1
    while (target := corrupt_dir(directory, n)).exists():
        n += 1
    os.rename(candidate, target)
    return target


def load_checkpoint(
    directory: Path,
    required: Iterable[str] = (),
    recovered: list[dict[str, str]] | None = None,
) -> dict[str, Any] | None:
    """The state saved in ``directory``, or None if there is none that can be used.

    If a previous save was killed between its two renames, the old checkpoint is
    still complete under its ``-old`` name and is used.

    Parameters
    ----------
    directory
        The checkpoint directory (``state.pt`` inside).
    required
        Keys the state must have, besides ``config`` (a dict); a state without them is
        treated like an unreadable one.
    recovered
        If given, one ``{"path", "error"}`` is appended for each checkpoint that could not
        be used; it was moved to ``<directory>.corrupt-<n>`` and a
        :class:`CorruptCheckpointWarning` was issued.
    """
    directory = Path(directory)
    required = tuple(required)
    for candidate in (directory, old_dir(directory)):
        path = candidate / STATE_FILE
        if not path.is_file():
            continue
        try:
            return _read(path, required)
        except Exception as exc:  # any failure to read is corruption: recover, never retry it
            error = _one_line(exc)
            target = _move_aside(candidate, directory)
            warnings.warn(
                f"checkpoint {path} is unreadable ({error}); moved it to {target} and "
                "continuing without it",
                CorruptCheckpointWarning,
                stacklevel=2,
            )
            if recovered is not None:
                recovered.append({"path": str(path), "error": error})
    return None
