"""Whether a config recorded by an earlier steadytune is the config this one would run.

A setting added to steadytune after a trial was recorded is absent from that record. Every
added setting's ``None`` is its "off", the behaviour from before it existed
(docs/decisions.md, "Settings added later"), so where the current config holds such a
setting as ``None`` the recorded trial ran exactly what is asked now: a resume after an
upgrade keeps its finished trials and checkpoints instead of refusing the run dir. Any
other difference — a value where the record has none, ``None`` where it has a value — is a
different config, never reused.
"""

from __future__ import annotations

from typing import Any


def without_added_nulls(current: Any, recorded: Any) -> Any:
    """``current`` less the keys ``recorded`` lacks and ``current`` holds as None, at
    every depth where both are mappings."""
    if not isinstance(current, dict) or not isinstance(recorded, dict):
        return current
    return {
        key: without_added_nulls(value, recorded[key]) if key in recorded else value
        for key, value in current.items()
        if key in recorded or value is not None
    }


def same_config(recorded: Any, current: Any) -> bool:
    """Whether a trial recorded with ``recorded`` ran what ``current`` asks."""
    return recorded == without_added_nulls(current, recorded)
