"""A config recorded before a setting existed matches the current one only where the
setting is None (off); every other difference is a different config."""

import json
from pathlib import Path

from trainer.loading import config_to_dict, load_config
from trainer.recorded import same_config, without_added_nulls

RECORDED = {"seed": 0, "data": {"name": "sst2", "train_size": 1000}}


def test_a_setting_added_since_and_left_none_is_the_same_config():
    current = {"seed": 0, "data": {"name": "sst2", "train_size": 1000, "test_from_train": None}}
    assert same_config(RECORDED, current)
    assert without_added_nulls(current, RECORDED) == RECORDED


def test_an_empty_mapping_recorded_where_none_is_now_the_default_is_the_same_config():
    """A CoNLL run of issue 26 recorded data.files.eval as {} before its default became
    None; its trials are still its trials."""
    recorded = {"seed": 0, "data": {"files": {"train": "t.txt", "eval": {}}}}
    assert same_config(recorded, {"seed": 0, "data": {"files": {"train": "t.txt", "eval": None}}})
    assert not same_config(
        recorded, {"seed": 0, "data": {"files": {"train": "t.txt", "eval": {"de": "de.txt"}}}}
    )


def test_every_other_difference_is_a_different_config():
    for current in (
        {"seed": 0, "data": {"name": "sst2", "train_size": 1000, "test_from_train": 5}},
        {"seed": 0, "data": {"name": "sst2", "train_size": None}},  # None where a value was
        {"seed": 0, "data": {"name": "sst2"}},  # a recorded setting gone
        {"seed": 1, "data": {"name": "sst2", "train_size": 1000}},
        {"seed": 0, "data": None, "extra": None},
    ):
        assert not same_config(RECORDED, current), current
    assert not same_config(None, {"seed": 0})


BASELINE = Path(__file__).parent / "fixtures" / "config-settings-0.1.0.json"


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _added_and_not_none(known: set[str], sources: list[dict]) -> dict[str, list[str]]:
    """Strategy -> the settings its default config holds that ``known`` lacks and that
    are not None, over every data source of ``sources``."""
    found = {}
    for strategy in json.loads(BASELINE.read_text())["strategies"]:
        extra = {"optim": {"layer_decay": 0.9}} if "llrd" in strategy else {}
        for data in sources:
            raw = {"data": data, "strategy": strategy, **extra}
            leaves = _leaves(config_to_dict(load_config(raw)))
            bad = [k for k, v in leaves.items() if k not in known and v is not None]
            if bad:
                found.setdefault(strategy, []).extend(bad)
    return found


def test_every_setting_added_since_0_1_0_is_none_for_the_strategies_it_had(tmp_path):
    """The rule ``same_config`` rests on, over every setting of every 0.1.0 strategy's
    config: a setting that did not exist then is None (off) in their configs now, so a
    trial recorded then still matches. A new section belongs to its part and is None
    where the strategy lacks it (``trainer/catalog.py``, ``optional_section``)."""
    known = set(json.loads(BASELINE.read_text())["settings"])
    table = tmp_path / "t.tsv"
    table.write_text("text\tlabel\na\tx\nb\ty\n")
    sources = [{"name": "synthetic-sentiment"},
               {"files": {"train": str(table), "dev": str(table), "test": str(table)}},
               {"hub": {"path": "glue", "name": "sst2"}}]  # fmt: skip
    assert _added_and_not_none(known, sources) == {}
    # the check sees a setting with a default: take one out of the record of 0.1.0
    for left_out in ("optim.lr", "data.files.encoding"):
        found = _added_and_not_none(known - {left_out}, sources)
        assert found and all(left_out in bad for bad in found.values())
