"""Standard JSON out of results that may hold NaN, infinities and numpy scalars.

``json.dumps`` writes a non-finite float as a bare ``NaN``/``Infinity``, which is not JSON:
``jq``, JavaScript and strict parsers reject the whole file. A diverged trial has such
numbers, so everything steadytune writes goes through :func:`to_json_safe` (non-finite ->
``null``) and is written with ``allow_nan=False``, so a value that slips through fails
loudly here instead of producing a file other tools cannot read.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_json_mapping", "read_result", "to_json_safe", "write_json_atomic"]


def to_json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as None and numpy scalars as Python ones, recursively.

    Tuples become lists, as they would after a JSON round trip, so the returned value
    compares equal to what a reader of the file gets back.
    """
    if isinstance(obj, dict):
        return {key: to_json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(value) for value in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as standard JSON to ``path``: a temp file beside it, then a rename.

    A reader (or a rerun checking whether the trial finished) sees either the old file or
    the complete new one, never a half-written one, even if the process is killed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_json_safe(obj), f, indent=2, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_mapping(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an
    object: a trial directory's files are read this way while other processes write them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_result(path: str | Path) -> dict[str, Any] | None:
    """A run's ``result.json`` as a mapping with its ``config``, or None when it is
    missing or damaged (truncated, not JSON, no config): such a file is never trusted."""
    data = read_json_mapping(path)
    return data if data is not None and isinstance(data.get("config"), dict) else None
