"""The strategies' invariants, checked through the real loop on a tiny BERT."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from trainer import load_config, train
from trainer.averaging import flatten_parameters_
from trainer.loading import merge
from trainer.teachers import AveragedTeacher, SelfEnsemble, VotingTeacher


def _run(config: dict, out, **overrides) -> tuple[dict, dict[str, np.ndarray]]:
    result = train(load_config(merge(config, overrides)), out)
    with np.load(out / "logits.npz") as logits:
        return result, dict(logits)


def _student_history(result: dict) -> list:
    return [(h["step"], h["train_loss"], h["dev"]) for h in result["history"]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sda_k1_equals_sdv_k1(tiny_config, tmp_path, precision):
    distill = {"k": 1, "teacher_precision": precision}
    sda, sda_logits = _run(tiny_config, tmp_path / "sda", strategy="sda", distill=distill)
    sdv, sdv_logits = _run(tiny_config, tmp_path / "sdv", strategy="sdv", distill=distill)
    assert sda["teacher_bf16"] == sdv["teacher_bf16"] == (precision == "bf16")
    assert _student_history(sda) == _student_history(sdv)
    np.testing.assert_array_equal(sda_logits["dev_logits"], sdv_logits["dev_logits"])


def test_sda_with_zero_lambda_equals_vanilla(tiny_config, tmp_path):
    vanilla, v_logits = _run(tiny_config, tmp_path / "vanilla")
    sda, s_logits = _run(
        tiny_config, tmp_path / "sda", strategy="sda", distill={"lambda": 0.0, "k": 3}
    )
    assert _student_history(sda) == _student_history(vanilla)
    np.testing.assert_array_equal(v_logits["dev_logits"], s_logits["dev_logits"])


def test_distillation_changes_training(tiny_config, tmp_path):
    vanilla, v_logits = _run(tiny_config, tmp_path / "vanilla")
    sda, s_logits = _run(tiny_config, tmp_path / "sda", strategy="sda", distill={"lambda": 1.0})
    assert not np.array_equal(v_logits["dev_logits"], s_logits["dev_logits"])
    # an fp32 teacher gives other targets than a bf16 one, but the same training in spirit
    _, fp32_logits = _run(
        tiny_config, tmp_path / "fp32", strategy="sda", distill={"teacher_precision": "fp32"}
    )
    _, bf16_logits = _run(
        tiny_config, tmp_path / "bf16", strategy="sda", distill={"teacher_precision": "bf16"}
    )
    assert not np.array_equal(fp32_logits["dev_logits"], bf16_logits["dev_logits"])
    np.testing.assert_allclose(fp32_logits["dev_logits"], bf16_logits["dev_logits"], atol=0.05)
    assert "averaged" in sda["metrics"] and "averaged" not in vanilla["metrics"]


def test_same_seed_reproduces_other_seed_differs(tiny_config, tmp_path):
    a, a_logits = _run(tiny_config, tmp_path / "a", seed=3)
    b, b_logits = _run(tiny_config, tmp_path / "b", seed=3)
    _c, c_logits = _run(tiny_config, tmp_path / "c", seed=4)
    np.testing.assert_array_equal(a_logits["dev_logits"], b_logits["dev_logits"])
    assert a["history"] == b["history"]
    assert not np.array_equal(a_logits["dev_logits"], c_logits["dev_logits"])


def test_noisytune_perturbs_and_combines(tiny_config, tmp_path):
    _, v_logits = _run(tiny_config, tmp_path / "v")
    _, n_logits = _run(tiny_config, tmp_path / "n", strategy="noisytune")
    assert not np.array_equal(v_logits["dev_logits"], n_logits["dev_logits"])
    _, zero_logits = _run(tiny_config, tmp_path / "z", strategy="noisytune", noise={"lambda": 0.0})
    np.testing.assert_array_equal(v_logits["dev_logits"], zero_logits["dev_logits"])
    combo, _ = _run(tiny_config, tmp_path / "ns", strategy="noisytune+se")
    assert combo["teacher_k"] == "all" and "averaged" in combo["metrics"]


# -- the teachers against brute force, on a small BERT ------------------------------


def _small_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
    )
    return BertForSequenceClassification(config)


def _walk(flat: torch.Tensor, steps: int, seed: int = 1) -> Iterator[torch.Tensor]:
    """Move the parameters in place like training would, yielding a copy of each state."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        with torch.no_grad():
            flat.add_(torch.randn(flat.shape, generator=gen) * 0.05)
        yield flat.clone()


@pytest.mark.parametrize("k", [1, 2, 5, "all"])
def test_sda_teacher_is_mean_of_last_k_snapshots(k):
    student = _small_bert()
    flat = flatten_parameters_(student)
    teacher = AveragedTeacher(student, flat, k)
    states = []
    for state in _walk(flat, 9):  # record as the loop does, step by step
        teacher.record(flat)
        states.append(state)
    expected = torch.stack(states if k == "all" else states[-k:]).mean(0)
    model = teacher.averaged_model()
    got = torch.cat([p.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    student_buffers = dict(student.named_buffers())
    for name, buffer in model.named_buffers():
        assert buffer.dtype == student_buffers[name].dtype
        assert torch.equal(buffer, student_buffers[name])


@pytest.mark.parametrize("k", [1, 3])
def test_sdv_teacher_logits_are_mean_of_snapshot_logits(k):
    student = _small_bert()
    flat = flatten_parameters_(student)
    teacher = VotingTeacher(student, flat, k)
    inputs = {"input_ids": torch.randint(1, 50, (4, 7), generator=torch.Generator().manual_seed(0))}
    assert teacher.logits(inputs) is None  # step 0: nothing recorded yet
    states = list(_walk(flat, 6))
    for state in states:
        teacher.record(state)
    expected = []
    for state in states[-k:]:
        probe = _small_bert()
        probe_flat = flatten_parameters_(probe)
        probe_flat.copy_(state)
        probe.eval()
        with torch.no_grad():
            expected.append(probe(**inputs).logits)
    torch.testing.assert_close(teacher.logits(inputs), torch.stack(expected).mean(0))


def test_self_ensemble_evaluates_the_running_mean():
    student = _small_bert()
    flat = flatten_parameters_(student)
    ensemble = SelfEnsemble(student, flat, "all")
    assert ensemble.averaged_model() is None
    states = list(_walk(flat, 5))
    for state in states:
        ensemble.record(state)
    got = torch.cat([p.reshape(-1) for p in ensemble.averaged_model().parameters()])
    torch.testing.assert_close(got, torch.stack(states).mean(0))


def test_result_json_and_outputs(tiny_config, tmp_path):
    result, logits = _run(tiny_config, tmp_path / "r", strategy="sda", save_model=True)
    on_disk = json.loads((tmp_path / "r" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    for key in ("config", "metrics", "history", "versions", "git_commit", "runtime_s"):
        assert key in on_disk
    assert on_disk["config"]["strategy"] == "sda"
    assert 0.0 <= on_disk["metrics"]["dev"]["accuracy"] <= 1.0
    assert set(on_disk["metrics"]["averaged"]["dev"]) == {"accuracy", "macro_f1", "mcc"}
    assert [h["step"] for h in on_disk["history"]] == [6, 12]
    # test is scored once, at the end; the intermediate evaluation scores dev only
    middle, last = on_disk["history"]
    assert {"dev", "test"} <= set(last) and "test" not in middle and "dev" in middle
    assert set(middle["averaged"]) == {"dev"} and set(last["averaged"]) == {"dev", "test"}
    assert on_disk["metrics"]["test"] == last["test"]
    assert logits["dev_logits"].shape == (len(logits["dev_labels"]), 2)
    assert logits["averaged_dev_logits"].shape == logits["dev_logits"].shape
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "r" / "model.safetensors")
    assert "classifier.weight" in weights


@pytest.mark.parametrize("lengths", [None, np.arange(103) % 17 + 3])
def test_train_order_covers_each_example_once_per_epoch(lengths):
    from trainer.batches import TrainOrder

    order = TrainOrder(103, 8, seed=5, lengths=lengths)
    for epoch in range(2):
        steps = range(epoch * order.steps_per_epoch, (epoch + 1) * order.steps_per_epoch)
        seen = np.concatenate([order.indices(s) for s in steps])
        assert sorted(seen.tolist()) == list(range(103))
    again = TrainOrder(103, 8, seed=5, lengths=lengths)
    assert np.array_equal(
        again.indices(order.steps_per_epoch + 3), order.indices(order.steps_per_epoch + 3)
    )
    other = TrainOrder(103, 8, seed=6, lengths=lengths)
    assert not np.array_equal(other.indices(0), order.indices(0))
    if lengths is not None:  # grouped batches pad far less than random ones
        padded = sum(lengths[order.indices(s)].max() * len(order.indices(s)) for s in range(13))
        plain = TrainOrder(103, 8, seed=5)
        padded_plain = sum(
            lengths[plain.indices(s)].max() * len(plain.indices(s)) for s in range(13)
        )
        assert padded < 0.8 * padded_plain


def test_second_trial_hits_the_tokenization_cache(tiny_config, tmp_path):
    cold = merge(tiny_config, {"cache_dir": str(tmp_path / "cache"), "optim": {"max_steps": 2}})
    first, _ = _run(cold, tmp_path / "a")
    second, _ = _run(cold, tmp_path / "b", seed=1, strategy="sda")
    other_length, _ = _run(cold, tmp_path / "c", data={"max_length": 32})
    assert (first["tokenization_cache_hit"], second["tokenization_cache_hit"]) == (False, True)
    assert other_length["tokenization_cache_hit"] is False
