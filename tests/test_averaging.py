"""Parameter averaging: ring buffer + running sum equals the brute-force mean."""

import pytest
import torch
from torch import nn

from trainer.averaging import ParameterAverage, ShadowModel, flatten_parameters_


def _vectors(n: int, size: int = 1000, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=gen) * (1 + i) for i in range(n)]


@pytest.mark.parametrize("k", [1, 2, 3, 5, "all"])
def test_mean_equals_brute_force_mean_of_last_k(k):
    vectors = _vectors(23)
    average = ParameterAverage(1000, k, torch.device("cpu"), torch.float32)
    out = torch.empty(1000)
    for i, vector in enumerate(vectors):
        average.update(vector)
        window = vectors[: i + 1] if k == "all" else vectors[max(0, i + 1 - k) : i + 1]
        average.mean_into(out)
        torch.testing.assert_close(out, torch.stack(window).mean(0), rtol=1e-5, atol=1e-5)
        assert average.size == len(window)


@pytest.mark.parametrize("keep_mean", [True, False])
def test_unwritten_ring_slots_are_never_read(keep_mean):
    """The ring is allocated empty: poison it and check nothing of it leaks out."""
    k = 4
    avg = ParameterAverage(6, k, torch.device("cpu"), torch.float64, keep_mean=keep_mean)
    avg.ring.fill_(float("nan"))
    avg.RESYNC_EVERY = 2  # the exact recomputation must wait for a full window too
    vectors = [torch.full((6,), float(i), dtype=torch.float64) for i in range(1, 8)]
    for i, v in enumerate(vectors, start=1):
        avg.update(v)
        window = torch.stack(vectors[max(0, i - k) : i])
        assert torch.equal(torch.stack(avg.snapshots()), window)
        if keep_mean:
            torch.testing.assert_close(avg.mean, window.mean(0))


def test_k_one_is_exact_copy():
    average = ParameterAverage(1000, 1, torch.device("cpu"), torch.float32)
    out = torch.empty(1000)
    for vector in _vectors(10):
        average.update(vector)
        average.mean_into(out)
        assert torch.equal(out, vector)
        assert torch.equal(average.snapshots()[0], vector)


def test_snapshots_are_oldest_first_and_copies():
    average = ParameterAverage(1000, 3, torch.device("cpu"), torch.float32)
    vectors = _vectors(5)
    for vector in vectors:
        average.update(vector)
    vectors[-1].zero_()  # the average kept its own copy
    snaps = average.snapshots()
    assert len(snaps) == 3
    assert torch.equal(snaps[0], vectors[2]) and torch.equal(snaps[1], vectors[3])
    assert snaps[2].abs().sum() > 0


def test_state_dict_round_trip_continues_identically():
    vectors = _vectors(12)
    a = ParameterAverage(1000, 4, torch.device("cpu"), torch.float32)
    for v in vectors[:7]:
        a.update(v)
    b = ParameterAverage(1000, 4, torch.device("cpu"), torch.float32)
    b.load_state_dict(
        {k: (v.clone() if torch.is_tensor(v) else v) for k, v in a.state_dict().items()}
    )
    for v in vectors[7:]:
        a.update(v)
        b.update(v)
    out_a, out_b = torch.empty(1000), torch.empty(1000)
    a.mean_into(out_a)
    b.mean_into(out_b)
    assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "some"])
def test_invalid_k_is_refused(k):
    with pytest.raises(ValueError, match="'k'"):
        ParameterAverage(10, k, torch.device("cpu"), torch.float32)


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.register_buffer("position_ids", torch.arange(7))


def test_flatten_makes_parameters_views_of_one_vector():
    torch.manual_seed(0)
    model = WithBuffers()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flat = flatten_parameters_(model)
    assert flat.numel() == sum(p.numel() for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    flat.zero_()
    assert all(p.abs().sum() == 0 for p in model.parameters())


def test_shadow_model_is_frozen_and_keeps_integer_buffers():
    model = WithBuffers()
    flatten_parameters_(model)
    shadow = ShadowModel(model)
    assert not shadow.module.training
    assert not any(p.requires_grad for p in shadow.module.parameters())
    assert shadow.module.position_ids.dtype == torch.int64
    assert torch.equal(shadow.module.position_ids, model.position_ids)
    shadow.load(torch.ones_like(shadow.flat))
    assert all(torch.equal(p, torch.ones_like(p)) for p in shadow.module.parameters())
    assert torch.equal(shadow.module.position_ids, model.position_ids)
