"""Every example file the README points to validates as what it claims to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.driver import plan_rows
from sweeps.spec import load_spec
from trainer import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_CONFIGS = {"train-tiny.yaml"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_validates(path):
    if path.name in TRAIN_CONFIGS:
        assert load_config(path).model == "tiny-bert"
    else:
        rows = plan_rows(load_spec(path))
        assert sum(row["trials"] for row in rows) > 0
