"""SDA's EMA teacher (``distill.average: ema``): brute force, validation, training, resume."""

from __future__ import annotations

import pytest
import torch
from test_resume import assert_same_logits
from test_trainer_invariants import _small_bert, _walk

from trainer import ConfigError, load_config, train
from trainer.averaging import flatten_parameters_
from trainer.loading import merge
from trainer.teachers import EmaTeacher


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.99])
def test_ema_teacher_equals_the_brute_force_average(decay):
    student = _small_bert()
    flat = flatten_parameters_(student)
    teacher = EmaTeacher(student, flat, decay)
    inputs = {"input_ids": torch.randint(1, 50, (4, 7), generator=torch.Generator().manual_seed(0))}
    assert teacher.logits(inputs) is None and teacher.averaged_model() is None
    states = list(_walk(flat, 12))
    for state in states:
        teacher.record(state)
    expected = states[0].double()
    for n, state in enumerate(states[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * state.double()
    got = torch.cat([p.reshape(-1) for p in teacher.averaged_model().parameters()])
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    probe = _small_bert()
    flatten_parameters_(probe).copy_(expected.float())
    probe.eval()
    with torch.no_grad():
        torch.testing.assert_close(teacher.logits(inputs), probe(**inputs).logits)


EMA = {"average": "ema"}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"strategy": "sdv", "distill": EMA},
         "'distill.average' parameter must be 'window' for strategy 'sdv'"),
        ({"strategy": "se", "distill": EMA}, "'distill.average' parameter must be 'window'"),
        ({"strategy": "sda", "distill": {**EMA, "k": 3}}, "'distill.k' parameter must be left out"),
        ({"strategy": "sda", "distill": {**EMA, "ema_decay": 1}}, "'distill.ema_decay' parameter"),
        ({"strategy": "sda", "distill": {"average": "mean"}}, "'distill.average' parameter"),
    ],
)  # fmt: skip
def test_bad_ema_settings_are_one_line_errors(tiny_config, over, message):
    with pytest.raises(ConfigError) as err:
        load_config(merge(tiny_config, over))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ema_teacher_trains_is_evaluated_and_resumes_exactly(tiny_config, tmp_path):
    config = load_config(
        merge(tiny_config, {"strategy": "sda", "distill": {"average": "ema", "ema_decay": 0.9}})
    )
    reference = train(config, tmp_path / "reference")
    window = train(load_config(merge(tiny_config, {"strategy": "sda"})), tmp_path / "window")
    assert "averaged" in reference["metrics"]  # the teacher is evaluated beside the student
    assert reference["history"] != window["history"]

    def die_at_step_8(metrics, checkpoint_dir):
        if metrics["step"] == 8:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, tmp_path / "resumed", report=die_at_step_8)
    resumed = train(config, tmp_path / "resumed")
    assert resumed["resumed_from_steps"] == [8]
    for key in ("metrics", "history", "steps", "config"):
        assert resumed[key] == reference[key]
    assert_same_logits(tmp_path / "reference", tmp_path / "resumed")
