"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a directory holding one ``state.pt``: a plain dict (as nanoGPT's)
of tensors, numbers and strings — model, optimizer, scheduler, strategy state, RNG
states, the step (which fixes the data position) and the evaluation history. It is
written to a temporary directory and renamed into place, so a process killed
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]

STATE_FILE = "state.pt"


def save_checkpoint(state: dict[str, Any], directory: Path) -> Path:
    """Write ``state`` to ``directory/state.pt`` atomically and return ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    torch.save(state, staging / STATE_FILE)
    old = directory.with_name(f".{directory.name}-old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(directory, old)
    os.rename(staging, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The state saved in ``directory``, or None if there is none.

    If a previous save was killed between its two renames, the old checkpoint is
    still complete under its ``-old`` name and is used.
    """
    directory = Path(directory)
    for candidate in (directory, directory.with_name(f".{directory.name}-old")):
        path = candidate / STATE_FILE
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    return None
