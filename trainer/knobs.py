"""A knob: one dotted key of the trial config, and how results show it.

Every knob — the papers' K and λs as much as ``optim.lr`` or ``recadam.gamma`` — travels
one path: a sweep's ``grid`` or ``search`` sets it by its dotted key, a trial records it in
its ``settings`` (dotted key -> value), ``results.parquet`` holds it in a column named by
that key, and tables, trial keys and plots name it through its :class:`Knob`. A part of a
strategy declares the knobs it reads (``trainer/catalog.py``); a setting no part
declares (``optim.lr``) is a plain knob, read by every strategy.

A configuration's settings are written as one label, ``distill.k=all distill.lambda=1
optim.lr=2e-05``: the headline knobs in registry order first, then the others by name.
The label is what tables group by and what :func:`parse_label` reads back; its values
never hold a space (settings a sweep may vary are single numbers, booleans or names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Knob", "format_value", "is_unset", "parse_label"]


@dataclass(frozen=True)
class Knob:
    """A dotted config key a strategy reads, and its names in keys, tables and plots."""

    key: str  # the dotted key: 'distill.k'
    label: str = ""  # in tables and plots ('K', 'dλ'); default: the key
    tag: str = ""  # in trial keys ('k' gives 'k5'); default: 'distill.k=5'
    # recorded for every trial whose strategy reads it, swept or not (the papers' knobs,
    # shown in every label); any other knob is recorded where a sweep varies it
    headline: bool = False
    about: str = ""  # an axis title: what the knob means, with its unit
    # its values are an ordered category ('all' after every number: K), not numbers
    categorical: bool = False
    # its value for a config (K's default depends on the strategy); None: the config's own
    resolve: Callable[[Any], Any] | None = None
    # why a strategy cannot take a value (K = 'all' is not SDV's), or None where it can;
    # a grid drops such a value for that strategy from a list shared by all
    refuses: Callable[[str, Any], str | None] | None = None
    # a per-strategy grid must give it to every strategy that reads it (K: its default
    # differs by strategy, so one left out would silently run at its own)
    every_reader: bool = False
    # whether it matters at a grid point of other settings (K does not under an EMA
    # teacher); None: wherever its strategy reads it
    applies: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def name(self) -> str:
        """How tables and plots name it."""
        return self.label or self.key

    def in_key(self, value: Any) -> str:
        """Its part of a trial key: ``k5``, ``dl1``, ``optim.lr=2e-05``."""
        text = format_value(value)
        return f"{self.tag}{text}" if self.tag else f"{self.key}={text}"

    def value_of(self, config: Any) -> Any:
        """Its value in a validated trial config (``trainer.config.TrainConfig``)."""
        if self.resolve is not None:
            return self.resolve(config)
        node = config
        for part in self.key.split("."):
            node = getattr(node, _attribute(node, part))
            if node is None:
                return None
        return node


def _attribute(model: Any, key: str) -> str:
    """The attribute of a pydantic model that holds ``key`` (``lambda`` -> ``lam``)."""
    for name, field in type(model).model_fields.items():
        if key in (name, field.alias):
            return name
    raise AttributeError(key)


def is_unset(value: Any) -> bool:
    """A knob left unset: None in a config, NaN in a results table's column."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(value: Any) -> str:
    """A knob's value as labels and keys write it: floats with ``:g``, the rest as text."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def sort_value(value: Any) -> tuple[int, float | str]:
    """Numbers before names, numbers by size; 'all' (K's) after every number."""
    if value == "all":
        return (0, math.inf)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return (1, str(value))
    return (0, number) if not math.isnan(number) else (-1, 0.0)


def ordered_keys(keys: Iterable[str], headline: Iterable[str]) -> list[str]:
    """``keys`` in label order: the headline knobs in registry order, the others by name."""
    keys = set(keys)
    first = [k for k in headline if k in keys]
    return first + sorted(keys - set(first))


def make_label(settings: Mapping[str, Any], headline: Iterable[str]) -> str:
    """One sortable string for a configuration's settings ('' for none)."""
    return " ".join(f"{k}={format_value(settings[k])}" for k in ordered_keys(settings, headline))


def parse_label(label: str) -> list[tuple[str, str]]:
    """(key, value as written) of each setting in a label, in order."""
    return [tuple(item.split("=", 1)) for item in (label or "").split(" ") if "=" in item]  # type: ignore[misc]
