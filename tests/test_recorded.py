"""A config recorded before a setting existed matches the current one only where the
setting is None (off); every other difference is a different config."""

from trainer.recorded import same_config, without_added_nulls

RECORDED = {"seed": 0, "data": {"name": "sst2", "train_size": 1000}}


def test_a_setting_added_since_and_left_none_is_the_same_config():
    current = {"seed": 0, "data": {"name": "sst2", "train_size": 1000, "test_from_train": None}}
    assert same_config(RECORDED, current)
    assert without_added_nulls(current, RECORDED) == RECORDED


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
