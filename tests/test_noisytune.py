"""NoisyTune's perturbation: bounds, spread, scope, exclusions and seeding."""

import math

import pytest
import torch
from torch import nn

from trainer.noisytune import perturb


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.big = nn.Linear(200, 300)  # 60,000 weights: enough for variance checks
        self.small = nn.Linear(3, 2)
        self.scalar = nn.Parameter(torch.tensor([0.7]))
        self.flat_zero = nn.Parameter(torch.zeros(5))
        with torch.no_grad():
            self.big.weight.mul_(10)  # two tensors with very different scales
        self.register_buffer("position_ids", torch.arange(10))


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("lam", [0.1, 0.15, 0.5])
def test_uniform_matrix_noise_is_bounded_and_has_uniform_variance(lam):
    model = Toy()
    before = _snapshot(model)
    perturb(model, lam, generator=torch.Generator().manual_seed(1))
    for name in ("big.weight", "big.bias", "small.weight"):
        std = before[name].std().item()
        delta = model.state_dict()[name] - before[name]
        assert delta.abs().max().item() <= lam / 2 * std * (1 + 1e-5)
        assert delta.abs().max().item() > 0
    delta = (model.big.weight - before["big.weight"]).flatten()
    expected_var = (lam * before["big.weight"].std().item()) ** 2 / 12
    assert delta.var().item() == pytest.approx(expected_var, rel=0.03)
    assert delta.mean().item() == pytest.approx(0.0, abs=0.02 * math.sqrt(expected_var))


def test_single_element_zero_std_and_buffers_unchanged():
    model = Toy()
    before = _snapshot(model)
    changed = perturb(model, 0.15, generator=torch.Generator().manual_seed(1))
    after = model.state_dict()
    assert "scalar" not in changed and "flat_zero" not in changed
    assert torch.equal(after["scalar"], before["scalar"])
    assert torch.equal(after["flat_zero"], before["flat_zero"])
    assert torch.equal(after["position_ids"], before["position_ids"])
    assert after["position_ids"].dtype == torch.int64


def test_zero_lambda_is_identity_and_exclude_patterns_hold():
    model = Toy()
    before = _snapshot(model)
    assert perturb(model, 0.0) == []
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    changed = perturb(model, 0.2, exclude=(r"^big\.",), generator=torch.Generator().manual_seed(0))
    assert set(changed) == {"small.weight", "small.bias"}
    assert torch.equal(model.big.weight, before["big.weight"])


def test_global_scope_uses_one_std_for_all_tensors():
    model = Toy()
    with torch.no_grad():
        model.small.weight.mul_(0.01)
    before = _snapshot(model)
    perturb(model, 0.2, scope="global", generator=torch.Generator().manual_seed(3))
    chosen = [before[n].flatten() for n in ("big.weight", "big.bias", "small.weight", "small.bias")]
    global_std = torch.cat([*chosen, before["flat_zero"]]).std().item()
    small_delta = (model.small.weight - before["small.weight"]).abs().max().item()
    # the small layer's own std is far below the global one: global noise exceeds it
    assert small_delta > 0.2 / 2 * before["small.weight"].std().item()
    for name in ("big.weight", "small.weight"):
        delta = (model.state_dict()[name] - before[name]).abs().max().item()
        assert delta <= 0.2 / 2 * global_std * (1 + 1e-5)


def test_gaussian_noise_has_gaussian_spread():
    model = Toy()
    before = _snapshot(model)
    perturb(model, 0.1, distribution="gaussian", generator=torch.Generator().manual_seed(5))
    delta = (model.big.weight - before["big.weight"]).flatten()
    expected_std = 0.1 * before["big.weight"].std().item()
    assert delta.std().item() == pytest.approx(expected_std, rel=0.03)
    assert delta.abs().max().item() > expected_std * 2  # unbounded, unlike uniform


def test_same_seed_same_noise_other_seed_other_noise():
    models = [Toy(), Toy(), Toy()]
    for model, seed in zip(models, (7, 7, 8), strict=True):
        perturb(model, 0.15, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(models[0].big.weight, models[1].big.weight)
    assert not torch.equal(models[0].big.weight, models[2].big.weight)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lam": float("nan")}, "'lam'"),
        ({"lam": -0.1}, "'lam'"),
        ({"lam": 0.1, "distribution": "laplace"}, "'distribution'"),
        ({"lam": 0.1, "scope": "layer"}, "'scope'"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        perturb(Toy(), **kwargs)
