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

from trainer.knobs import is_unset, parse_label
from trainer.strategies import settings_label


def without_added_nulls(current: Any, recorded: Any) -> Any:
    """``current`` less the keys ``recorded`` lacks and ``current`` holds as None, at
    every depth where both are mappings. A recorded empty mapping where ``current``
    holds None is the same "none" too: ``data.files.eval`` was ``{}`` for the runs
    recorded between its introduction and its default becoming None (issue 26)."""
    if not isinstance(current, dict) or not isinstance(recorded, dict):
        return current

    def kept(key: str, value: Any) -> Any:
        if value is None and recorded[key] == {}:
            return {}
        return without_added_nulls(value, recorded[key])

    return {
        key: kept(key, value) if key in recorded else value
        for key, value in current.items()
        if key in recorded or value is not None
    }


def same_config(recorded: Any, current: Any) -> bool:
    """Whether a trial recorded with ``recorded`` ran what ``current`` asks."""
    return recorded == without_added_nulls(current, recorded)


# What steadytune 0.1.0 called the papers' three knobs, as TrialSpec fields and results
# columns, before every knob was a dotted key of the trial config. The one mapping that
# reads its trial records and tables back (tests/fixtures/rundir-0.1.0 is such a run).
LEGACY_KNOB_NAMES = {
    "teacher_k": "distill.k",
    "distill_lambda": "distill.lambda",
    "noise_lambda": "noise.lambda",
}


def upgrade_trial(data: dict[str, Any]) -> dict[str, Any]:
    """A trial spec (``TrialSpec.to_dict()``) as this version writes it: 0.1.0's three
    knob fields folded into ``settings`` under their dotted keys."""
    if not any(old in data for old in LEGACY_KNOB_NAMES):
        return data
    data = dict(data)
    settings = dict(data.get("settings") or {})
    for old, new in LEGACY_KNOB_NAMES.items():
        value = data.pop(old, None)
        if not is_unset(value):
            settings.setdefault(new, value)
    return {**data, "settings": settings}


def upgrade_table(frame: Any) -> Any:
    """A results table (pandas) as this version writes it: 0.1.0's knob columns renamed
    to their dotted keys, and each ``settings`` label (which held the other swept
    settings only) holding them too."""
    legacy = [c for c in LEGACY_KNOB_NAMES if c in frame.columns]
    if not legacy:
        return frame
    frame = frame.rename(columns={c: LEGACY_KNOB_NAMES[c] for c in legacy})
    labels = []
    for row in frame.to_dict("records"):
        values: dict[str, Any] = dict(parse_label(row.get("settings") or ""))
        for key in (LEGACY_KNOB_NAMES[c] for c in legacy):
            if not is_unset(row.get(key)):
                values[key] = row[key]
        labels.append(settings_label(values))
    return frame.assign(settings=labels)
