"""The strategies, as data: the one place that says what a name means.

A strategy name is zero or more *modifiers* (set up before or around training:
``noisytune``, ``reinit`` change the pretrained weights, ``llrd`` the optimizer's learning
rates, ``recadam`` the update, ``mixout`` the linear layers) and one *base* strategy (how
training and evaluation go: ``vanilla``, ``se``, ``sda``, ``sdv``), joined by ``+``:
``noisytune+sda``; ``noisytune`` alone is NoisyTune on vanilla. Modifiers compose: a name
lists them in catalog order, and their parts act in that order.

The parts themselves — their knobs, sections, checks and builders — are declared in
``trainer/catalog.py``; this module gives the names every other module uses (the
accepted strategies, the knobs and what they mean for a strategy, the checks to run, the
cost order). The config, the sweep spec, the grid and the analysis all read it; it
imports neither torch nor anything that does.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from trainer.catalog import BASES, MODIFIERS, PARTS, Part, split
from trainer.knobs import Knob, is_unset, make_label, sort_value

if TYPE_CHECKING:
    from trainer.config import TrainConfig

__all__ = ["BASES", "HEADLINE", "KNOBS", "MODIFIERS", "STRATEGIES", "STRATEGY_KNOBS", "Part",
           "split"]  # fmt: skip


def _modifier_sets() -> list[tuple[str, ...]]:
    """Every non-empty set of modifiers, each in registry order, fewest first."""
    names = list(MODIFIERS)
    return [combo for size in range(1, len(names) + 1) for combo in combinations(names, size)]


# Every accepted name, in the order tables list them: the bases, then each set of
# modifiers alone (on vanilla) and with each base but vanilla.
STRATEGIES: tuple[str, ...] = (
    *BASES,
    *("+".join((*mods, b) if b != "vanilla" else mods) for mods in _modifier_sets() for b in BASES),
)

# Every declared knob by its key; the headline ones in the order labels and keys list them.
KNOBS: dict[str, Knob] = {k.key: k for part in PARTS for k in part.knobs}
HEADLINE: tuple[str, ...] = tuple(key for key, knob in KNOBS.items() if knob.headline)
# The dotted keys some strategy reads: the knobs that matter only where they are read.
STRATEGY_KNOBS: frozenset[str] = frozenset(KNOBS)


def sections() -> dict[str, tuple[type[BaseModel], bool]]:
    """Section name -> (its model, whether it is None where its part is absent)."""
    return {
        p.section: (p.section_model, p.optional_section)
        for p in PARTS
        if p.section is not None and p.section_model is not None
    }


def section_owners(section: str) -> tuple[str, ...]:
    """The parts that read a section (``distill``: se, sda, sdv)."""
    return tuple(p.name for p in PARTS if p.section == section)


def parts(strategy: str) -> tuple[Part, ...]:
    """The strategy's parts in the order they act: its modifiers, then its base."""
    modifiers, base = split(strategy)
    return (*(MODIFIERS[m] for m in modifiers), BASES[base])


def base_strategy(strategy: str) -> str:
    """'noisytune+sda' -> 'sda'; 'noisytune' -> 'vanilla'."""
    return split(strategy)[1]


def uses_noise(strategy: str) -> bool:
    return "noisytune" in split(strategy)[0]


def knobs(strategy: str) -> tuple[str, ...]:
    """The dotted keys a strategy reads (its modifiers' and its base's)."""
    return tuple(k.key for part in parts(strategy) for k in part.knobs)


def knob(key: str) -> Knob:
    """The declared knob of a dotted key, or a plain one (``optim.lr``)."""
    return KNOBS.get(key) or Knob(key)


def knob_matters(key: str, strategy: str, point: Mapping[str, Any] | None = None) -> bool:
    """Whether ``key`` changes what ``strategy`` trains (at a grid ``point`` of other
    settings): a strategy's own knob matters for the strategies that read it, where it
    applies; any other setting (``optim.lr``) for every one."""
    if key not in STRATEGY_KNOBS:
        return True
    declared = KNOBS[key]
    applies = declared.applies is None or point is None or declared.applies(point)
    return key in knobs(strategy) and applies


def identity(config: TrainConfig, swept: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that tell a trial's configuration apart, by dotted key: every
    headline knob its strategy reads (its resolved value, even at the default) and every
    setting the sweep varies for it (``swept``)."""
    found = {key: KNOBS[key].value_of(config) for key in HEADLINE
             if key in knobs(config.strategy)}  # fmt: skip
    found.update(swept)
    return {key: value for key, value in found.items() if value is not None}


def settings_label(settings: Mapping[str, Any]) -> str:
    """A configuration's settings as one sortable string (``trainer.knobs``)."""
    return make_label(settings, HEADLINE)


def check_config(config: TrainConfig) -> None:
    """Every part's cross-field check (each once), whatever the strategy."""
    for check in dict.fromkeys(p.check for p in PARTS if p.check is not None):
        check(config)


def check_model(config: TrainConfig, model_config: Any) -> None:
    """The strategy's parts' checks against the model's config (``config.json``)."""
    for part in parts(config.strategy):
        if part.model_check is not None:
            part.model_check(config, model_config)


def default_k(strategy: str) -> int | str | None:
    return BASES[base_strategy(strategy)].k_default


def allows_k_all(strategy: str) -> bool:
    return BASES[base_strategy(strategy)].k_all


def student_is_plain(strategy: str) -> bool:
    """Whether the strategy's student is the same run as without it (SE's)."""
    return BASES[base_strategy(strategy)].student_is_plain


def se_role(k: int | str) -> str:
    """The evaluation role of an SE window evaluated beside a plain run's student
    (``eval.self_ensembles``): 'se_kall', 'se_k5'."""
    return f"se_k{k}"


def plain_strategy(strategy: str) -> str:
    """The strategy with its base replaced by vanilla: 'noisytune+se' -> 'noisytune',
    'se' -> 'vanilla' (the run whose student SE's is)."""
    modifiers, _ = split(strategy)
    return "+".join(modifiers) or "vanilla"


def cost_rank(
    strategy: str, settings: Mapping[str, Any] | None = None, model: str = "student"
) -> tuple:
    """Cheaper first: the base's cost (vanilla < SE < SDA < SDV), the smaller K ('all'
    last), no modifiers before modifiers, the smaller distillation λ (closer to plain
    fine-tuning), the student before the averaged model (which needs its average kept
    and evaluated)."""
    modifiers, base = split(strategy)
    settings = settings or {}
    k, lam = settings.get("distill.k"), settings.get("distill.lambda")
    k_rank = 0.0 if is_unset(k) else sort_value(k)[1]
    lam_rank = -1.0 if is_unset(lam) else float(lam)  # type: ignore[arg-type]
    extra = sum(MODIFIERS[m].cost for m in modifiers)
    return (BASES[base].cost, k_rank, extra, lam_rank, int(model != "student"))
