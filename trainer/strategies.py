"""The strategies, as data: the one place that says what each name means.

A strategy name is zero or more *modifiers* (set up before training: ``noisytune``,
``reinit`` change the pretrained weights, ``llrd`` the optimizer's learning rates) and one
*base* strategy (how training and evaluation go: ``vanilla``, ``se``,
``sda``, ``sdv``), joined by ``+``: ``noisytune+sda``; ``noisytune`` alone is NoisyTune on
vanilla.
For each part the registry gives the dotted config keys it reads, its K rules and its
relative cost, and the builder of the part the training loop runs (``"module:function"``,
imported only when a run starts: see ``trainer/parts.py`` for the hooks). Torch-free: the
config, the sweep spec, the grid and the analysis read it.

Modifiers compose: a name lists them in registry order, and they are applied in that
order before training (``noisytune+sda``). Adding a strategy is one entry here, its
settings in ``trainer/config.py`` and its part (the hooks it needs) in a module of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Part:
    """One base strategy or modifier."""

    name: str
    knobs: tuple[str, ...] = ()  # the dotted config keys it reads
    k_default: int | str | None = None  # its K when ``distill.k`` is unset (None: no K)
    k_all: bool = False  # whether K = 'all' is allowed
    cost: int = 0  # relative cost: the decision's tie-break (cheaper first)
    student_is_plain: bool = False  # its student is the run without it (SE: bit for bit)
    builder: str = ""  # "module:function" building its part; "" = no part (vanilla)
    about: str = ""


BASES: dict[str, Part] = {
    p.name: p
    for p in (
        Part("vanilla", about="cross-entropy"),
        Part("se", knobs=("distill.k",), k_default="all", k_all=True, cost=1,
             student_is_plain=True, builder="trainer.parts:se",
             about="evaluate the mean of the last K steps' parameters"),
        Part("sda", knobs=("distill.k", "distill.lambda", "distill.average", "distill.ema_decay"),
             k_default=1, k_all=True, cost=2, builder="trainer.parts:sda",
             about="distil from the mean of the last K steps' parameters (or their EMA)"),
        Part("sdv", knobs=("distill.k", "distill.lambda"), k_default=1, cost=3,
             builder="trainer.parts:sdv",
             about="distil from the mean logits of the last K step snapshots (one forward "
                   "pass each, so K is finite)"),
    )
}  # fmt: skip
MODIFIERS: dict[str, Part] = {
    "noisytune": Part("noisytune", knobs=("noise.lambda",), cost=1,
                      builder="trainer.parts:noisytune",
                      about="perturb every parameter matrix before training"),
    "reinit": Part("reinit", knobs=("reinit.layers",), cost=1, builder="trainer.reinit:reinit",
                   about="re-initialise the top encoder layers and the pooler before training"),
    # no part: the optimizer reads optim.layer_decay (trainer/models.py:parameter_groups);
    # the name says so, so a 'vanilla' row never trained with decayed learning rates
    "llrd": Part("llrd", knobs=("optim.layer_decay",), cost=1,
                 about="layer-wise lr decay: lower encoder layers train at smaller rates"),
}  # fmt: skip


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


# The dotted keys some strategy reads: the knobs that matter only where they are read.
STRATEGY_KNOBS: frozenset[str] = frozenset(
    k for part in (*BASES.values(), *MODIFIERS.values()) for k in part.knobs
)


def split(strategy: str) -> tuple[tuple[str, ...], str]:
    """(modifiers, base) of a name: 'noisytune+sda' -> (('noisytune',), 'sda')."""
    parts = strategy.split("+")
    modifiers = tuple(p for p in parts if p in MODIFIERS)
    bases = [p for p in parts if p not in MODIFIERS]
    return modifiers, (bases[0] if bases else "vanilla")


def parts(strategy: str) -> tuple[Part, ...]:
    """The strategy's parts in the order they act: its modifiers, then its base."""
    modifiers, base = split(strategy)
    return (*(MODIFIERS[m] for m in modifiers), BASES[base])


def base_strategy(strategy: str) -> str:
    """'noisytune+sda' -> 'sda'; 'noisytune' -> 'vanilla'."""
    return split(strategy)[1]


def uses_noise(strategy: str) -> bool:
    return "noisytune" in split(strategy)[0]


def reinit_layers(strategy: str, layers: int) -> int | None:
    """The encoder layers a strategy re-initialises (None when it has no ``reinit``)."""
    return layers if "reinit" in split(strategy)[0] else None


def knobs(strategy: str) -> tuple[str, ...]:
    """The dotted keys a strategy reads (its modifiers' and its base's)."""
    modifiers, base = split(strategy)
    return tuple(k for m in modifiers for k in MODIFIERS[m].knobs) + BASES[base].knobs


def knob_matters(knob: str, strategy: str) -> bool:
    """Whether ``knob`` changes what ``strategy`` trains: a strategy's own knob matters
    for the strategies that read it; any other setting (``optim.lr``) for every one."""
    return knob in knobs(strategy) or knob not in STRATEGY_KNOBS


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
    strategy: str, k: object = None, distill_lambda: float | None = None, model: str = "student"
) -> tuple:
    """Cheaper first: the base's cost (vanilla < SE < SDA < SDV), the smaller K ('all'
    last), no modifiers before modifiers, the smaller λ (closer to plain fine-tuning),
    the student before the averaged model (which needs its average kept and evaluated)."""
    modifiers, base = split(strategy)
    if k is None or (isinstance(k, float) and math.isnan(k)):
        k_rank = 0.0
    else:
        k_rank = math.inf if str(k) == "all" else float(k)
    lam = -1.0 if distill_lambda is None or math.isnan(distill_lambda) else distill_lambda
    extra = sum(MODIFIERS[m].cost for m in modifiers)
    return (BASES[base].cost, k_rank, extra, lam, int(model != "student"))
