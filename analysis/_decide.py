"""The decision of a dataset: is anything better than vanilla, the same, or not known yet.

One rule, used by the report after a sweep and by the seed race after every round
(``sweeps/race.py``); docs/analysis.md ("Decisions") states it for users. Pure: values in,
a :class:`Decision` out, no pandas and no files.

* A *candidate* is one model of one configuration (SDA's student, or its teacher) with its
  dev score per seed. Every candidate is compared with vanilla **paired by seed** (same
  seed: same data order and head initialisation) on the seeds both have.
* ``better`` / ``worse``: the paired t-test (``scipy.stats.ttest_rel``), Holm-corrected
  over the dataset's candidates (``analysis.holm``), rejects
  at the level α in the direction of Δ.
* ``equivalent``: the paired two one-sided tests against ±margin
  (``statsmodels.stats.weightstats.ttost_paired``) reject at α.
* The dataset's verdict: ``better`` if a candidate is better (the chosen one is the best
  of those, below); else ``equivalent`` if every candidate that could be best (not
  ``worse``) is equivalent (an intersection–union test: each at α, no correction); else
  ``unresolved``, naming the leading contender and the seeds that would resolve it.
  Vanilla is chosen unless the verdict is ``better``.
* Choosing among candidates: the leader (highest mean Δ) and every candidate not
  significantly different from it (paired, Holm) are equally good; among those a
  candidate with *evidence* of a smaller std than vanilla (Brown–Forsythe,
  ``scipy.stats.levene(center="median")``, Holm-corrected, ratio < 1) is preferred; then
  the cheaper one (``trainer.strategies.cost_rank``), then the higher mean. A smaller
  std on 3–5 seeds without such evidence is noise and never breaks a tie.
* Power (``statsmodels.stats.power.TTestPower``): per candidate the std of the paired
  differences, the minimum detectable |Δ| at the current n (α/m, the first Holm step, 80 %
  power) and the seeds that would resolve the observed Δ (as ``better``/``worse`` at
  α/m, or as ``equivalent`` at α by the one-sided test nearer the margin).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

VERDICTS = ("better", "equivalent", "unresolved")
STATUSES = ("better", "worse", "equivalent", "unresolved")
# Equivalence margins (units of the metric): what a user would call "the same". One
# accuracy or F1 point is within what a reseed moves on small data (docs/results-v1.md: seed
# stds 0.5–1.4 points); MCC spans [-1, 1], twice accuracy's range. A correlation (STS-B's
# Pearson and Spearman, and their mean) is read in points too: ±0.01, about what BERT
# papers report as a tie; entity F1 and word accuracy are shares, like accuracy.
DEFAULT_MARGINS = {"accuracy": 0.01, "macro_f1": 0.01, "mcc": 0.02, "pearson_spearman": 0.01,
                   "pearson": 0.01, "spearman": 0.01, "entity_f1": 0.01,
                   "token_accuracy": 0.01}  # fmt: skip
POWER = 0.8
MAX_SEEDS_REPORTED = 1000  # beyond this, "seeds needed" is reported as > 1000


@dataclass(frozen=True)
class DecisionSettings:
    """``decision:`` of a sweep spec. ``margin`` None: the metric's default."""

    alpha: float = 0.05
    margin: float | None = None
    split: str = "dev"  # the split the verdict is decided on (``decision.split``)

    def margin_for(self, metric: str) -> float:
        if self.margin is not None:
            return float(self.margin)
        return DEFAULT_MARGINS.get(metric, 0.01)


@dataclass(frozen=True)
class Candidate:
    """A model of a configuration and its score per seed (one dataset, one metric).

    ``group`` is the strategy (per-strategy picks are made within a group); ``cost`` sorts
    cheaper first (``trainer.strategies.cost_rank``); ``flags`` marks seeds that diverged
    or predict one
    class (they count like any seed; the verdict shows them).
    """

    id: str
    label: str
    group: str
    values: Mapping[int, float]
    cost: tuple = ()
    is_vanilla: bool = False
    flags: Mapping[int, str] = field(default_factory=dict)


@dataclass
class Assessment:
    """One candidate against vanilla."""

    id: str
    label: str
    group: str
    n: int = 0
    mean: float = math.nan
    vanilla_mean: float = math.nan
    delta: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    sd_diff: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    tost_p: float = math.nan
    std: float = math.nan
    vanilla_std: float = math.nan
    std_ratio: float = math.nan
    bf_p: float = math.nan
    bf_p_holm: float = math.nan
    steadier: bool = False
    mde: float = math.nan
    seeds_needed: float = math.nan  # total seeds to resolve the observed Δ (inf: never)
    resolves_as: str = ""  # "better" | "worse" | "equivalent" | "" (with seeds_needed)
    status: str = "unresolved"
    flags: dict[str, int] = field(default_factory=dict)
    eliminated: bool = False


@dataclass
class Decision:
    """The verdict of one dataset and everything it rests on."""

    metric: str
    alpha: float
    margin: float
    level: float  # the nominal level the tests were run at (α, or a race look's)
    verdict: str
    chosen: str  # candidate id
    chosen_label: str
    reason: str
    assessments: list[Assessment]
    picks: dict[str, str]  # group -> candidate id (the per-strategy pick)
    contender: str | None = None  # the leading unresolved candidate (verdict unresolved)
    seeds_to_resolve: float = math.nan
    flags: dict[str, int] = field(default_factory=dict)  # flag -> seeds, over candidates

    def assessment(self, cid: str) -> Assessment:
        return next(a for a in self.assessments if a.id == cid)


# -- tests --------------------------------------------------------------------------
def _holm(p: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p (``analysis.holm``, equal to statsmodels' ``multipletests(...,
    "holm")``, which runs a full garbage collection per call: too slow for a race)."""
    from analysis._compare import holm

    return holm(p)


def paired_tests(x: np.ndarray, y: np.ndarray, *, margin: float, level: float) -> dict:
    """Paired tests of each row of ``x`` against the same row of ``y`` (seeds in
    columns, at least 2), vectorised over rows: a race looks often, and one call per
    candidate would cost more than the whole decision.

    ``p``: the two-sided paired t-test (``scipy.stats.ttest_rel``); ``tost_p``: the two
    one-sided t-tests of mean(x − y) against ±margin, the larger p (what
    ``statsmodels.stats.weightstats.ttost_paired`` computes); ``ci_low``/``ci_high``: the
    t interval of the mean difference at 1 − level. The t statistics are the textbook
    ones (mean difference over its standard error) and the probabilities come from
    scipy's Student-t (``scipy.special.stdtr``/``stdtrit``, what ``scipy.stats.t`` and
    ``ttest_rel`` use): ``ttest_rel`` itself spends ~1 ms per call validating its input,
    30 times what the test costs, and a race (or ``bench/race.py``, which simulates
    thousands) runs it at every round. ``tests/test_decide.py`` pins every output to
    ``ttest_rel``, ``ttost_paired`` and ``scipy.stats.t.ppf`` to 1e-10.

    A row whose differences are all equal has no spread: ``p`` is 0 (or 1 when they are
    all zero) and ``tost_p`` 0 or 1 by whether that difference is inside the margin.
    """
    from scipy import special

    d = x - y
    n = d.shape[1]
    df = n - 1
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    flat = sd == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / math.sqrt(n)
        p = 2 * special.stdtr(df, -np.abs(mean / se))
        if math.isfinite(margin):
            above_low = special.stdtr(df, -(mean + margin) / se)  # H1: mean > −margin
            below_high = special.stdtr(df, (mean - margin) / se)  # H1: mean < +margin
            tost = np.maximum(above_low, below_high)
        else:
            tost = np.full(len(d), np.nan)
        half = special.stdtrit(df, 1 - level / 2) * se
    p = np.where(flat, np.where(mean == 0, 1.0, 0.0), p)
    tost = np.where(flat, np.where(np.abs(mean) < margin, 0.0, 1.0), tost)
    return {"delta": mean, "sd": sd, "p": p, "tost_p": tost,
            "ci_low": mean - half, "ci_high": mean + half}  # fmt: skip


def _bf_p(x: np.ndarray, y: np.ndarray) -> float:
    """Brown–Forsythe test of equal variances: the one-way ANOVA F-test on the absolute
    deviations from each group's median, p from scipy's F distribution
    (``scipy.special.fdtrc``) — what ``scipy.stats.levene(center="median")`` computes
    (pinned to it in tests/test_decide.py), without its per-call overhead. NaN with fewer
    than 3 seeds or no spread at all."""
    from scipy import special

    if len(x) < 3 or np.ptp(np.concatenate([x, y])) == 0:
        return math.nan
    z = [np.abs(g - np.median(g)) for g in (x, y)]
    means = np.array([g.mean() for g in z])
    sizes = np.array([len(g) for g in z])
    grand = float((means * sizes).sum() / sizes.sum())
    between = float((sizes * (means - grand) ** 2).sum())
    within = float(sum(((g - m) ** 2).sum() for g, m in zip(z, means, strict=True)))
    dfn, dfd = len(z) - 1, int(sizes.sum()) - len(z)
    if within == 0:
        return 0.0 if between > 0 else 1.0
    return float(special.fdtrc(dfn, dfd, (between / dfn) / (within / dfd)))


def _seeds_for(effect: float, alpha: float, alternative: str) -> float:
    """Total seeds for 80 % power at ``effect`` (in sd units of the paired differences),
    from ``TTestPower.power`` over n = 2 … 1000; inf beyond."""
    from statsmodels.stats.power import TTestPower

    if not effect > 0:
        return math.inf
    if not math.isfinite(effect):
        return 2.0
    n = np.arange(2, MAX_SEEDS_REPORTED + 1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        power = TTestPower().power(effect, n, alpha, alternative=alternative)
    enough = np.flatnonzero(np.nan_to_num(power) >= POWER)
    return float(n[enough[0]]) if len(enough) else math.inf


def _mde(n: int, sd: float, alpha: float) -> float:
    """The |Δ| a paired t-test at ``alpha`` detects with 80 % power at n seeds."""
    from scipy.optimize import brentq
    from statsmodels.stats.power import TTestPower

    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")

        # the noncentral t's power is NaN far out, where it is 1 for any purpose
        def short(e: float) -> float:
            return float(np.nan_to_num(TTestPower().power(e, n, alpha), nan=1.0)) - POWER

        es = brentq(short, 1e-6, 1e3)
    return float(es) * sd


def _pair(a: Candidate, b: Candidate) -> tuple[np.ndarray, np.ndarray]:
    common = sorted(set(a.values) & set(b.values))
    return (
        np.array([a.values[s] for s in common], dtype=float),
        np.array([b.values[s] for s in common], dtype=float),
    )


# -- the rule -----------------------------------------------------------------------
def assess(
    candidates: Sequence[Candidate],
    *,
    metric: str,
    settings: DecisionSettings,
    level: float | None = None,
    family_size: int | None = None,
    eliminated: Iterable[str] = (),
    power: bool = True,
) -> list[Assessment]:
    """Every non-vanilla candidate against vanilla, with its status at ``level``.

    ``level`` defaults to α (a race passes its look's nominal level); ``family_size`` is
    the Holm family's size (default: the candidates given; a race keeps the size it
    started with). ``eliminated`` candidates (stopped by a race, tested on the seeds
    they got) keep their status but are never chosen. ``power``: also the minimum
    detectable effect and the seeds to resolve (a race's interim looks skip them; nothing
    else depends on them).
    """
    level = settings.alpha if level is None else level
    margin = settings.margin_for(metric)
    vanilla = next(c for c in candidates if c.is_vanilla)
    out_ids = set(eliminated)
    others = [c for c in candidates if not c.is_vanilla]
    m = max(family_size or len(others), 1)
    rows: list[Assessment] = []
    pairs = [_pair(c, vanilla) for c in others]
    for c, (x, y) in zip(others, pairs, strict=True):
        a = Assessment(c.id, c.label, c.group, n=len(x), eliminated=c.id in out_ids)
        for flag in c.flags.values():
            a.flags[flag] = a.flags.get(flag, 0) + 1
        if len(x):
            a.mean, a.vanilla_mean = float(x.mean()), float(y.mean())
            a.delta = float((x - y).mean())
        if len(x) >= 2:
            a.std, a.vanilla_std = float(x.std(ddof=1)), float(y.std(ddof=1))
            a.std_ratio = (
                a.std / a.vanilla_std if a.vanilla_std > 0 else (1.0 if a.std == 0 else math.inf)
            )
        rows.append(a)
    for a, res in zip(rows, tests_against(vanilla, others, margin=margin, level=level),
                      strict=True):  # fmt: skip
        if res is None:
            continue
        a.sd_diff, a.p, a.tost_p = res["sd"], res["p"], res["tost_p"]
        a.ci_low, a.ci_high = res["ci_low"], res["ci_high"]
        if power:
            a.mde = _mde(a.n, a.sd_diff, level / m)
    # Holm over the whole family; a candidate without data is a hypothesis not rejected
    p_family = [a.p for a in rows] + [1.0] * (m - len(rows))
    for a, ph in zip(rows, _holm(p_family)[: len(rows)], strict=True):
        a.p_holm = float(ph)
        if ph < level:
            a.status = "better" if a.delta > 0 else "worse"
        elif a.tost_p < level:
            a.status = "equivalent"
        if power:
            _resolution(a, level / m, level, margin)
    for a, (x, y) in zip(rows, pairs, strict=True):
        a.bf_p = math.nan if a.eliminated else _bf_p(x, y)
    for a, bh in zip(rows, _holm([a.bf_p for a in rows]), strict=True):
        a.bf_p_holm = float(bh)
        a.steadier = bool(bh < level and a.std_ratio < 1)
    return rows


def _resolution(a: Assessment, alpha_diff: float, alpha_equiv: float, margin: float) -> None:
    """Seeds that would resolve the observed Δ at its observed spread (NaN: resolved)."""
    if a.status != "unresolved" or a.n < 2 or not math.isfinite(a.sd_diff):
        return
    if a.sd_diff == 0:
        a.seeds_needed, a.resolves_as = float(a.n), ""
        return
    routes = [(_seeds_for(abs(a.delta) / a.sd_diff, alpha_diff, "two-sided"),
               "better" if a.delta > 0 else "worse")]  # fmt: skip
    if abs(a.delta) < margin:
        routes.append(
            (_seeds_for((margin - abs(a.delta)) / a.sd_diff, alpha_equiv, "larger"), "equivalent")
        )
    n, how = min(routes)
    a.seeds_needed, a.resolves_as = (n if n <= MAX_SEEDS_REPORTED else math.inf), how


def tests_against(
    ref: Candidate, others: Sequence[Candidate], *, margin: float, level: float
) -> list[dict[str, float] | None]:
    """:func:`paired_tests` of each of ``others`` against ``ref`` on their common seeds,
    one vectorised call per set of common seeds (in a race: one set); None for a
    candidate with fewer than 2 common seeds."""
    out: list[dict[str, float] | None] = [None] * len(others)
    pairs = [_pair(c, ref) for c in others]
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(others):
        if len(pairs[i][0]) >= 2:
            groups.setdefault(tuple(sorted(set(c.values) & set(ref.values))), []).append(i)
    for idx in groups.values():
        x, y = np.stack([pairs[i][0] for i in idx]), np.stack([pairs[i][1] for i in idx])
        res = paired_tests(x, y, margin=margin, level=level)
        for j, i in enumerate(idx):
            out[i] = {name: float(values[j]) for name, values in res.items()}
    return out


def p_against(ref: Candidate, others: Sequence[Candidate]) -> list[tuple[float, float]]:
    """(mean difference, two-sided paired t p) of each of ``others`` against ``ref`` on
    their common seeds; (the one difference or NaN, NaN) with fewer than 2."""
    out = []
    for c, res in zip(others, tests_against(ref, others, margin=math.inf, level=0.05),
                      strict=True):  # fmt: skip
        if res is not None:
            out.append((res["delta"], res["p"]))
        else:
            x, y = _pair(c, ref)
            out.append((float((x - y).mean()) if len(x) else math.nan, math.nan))
    return out


def _equally_good(leader: Candidate, pool: Sequence[Candidate], level: float) -> list[Candidate]:
    """The leader and the candidates of ``pool`` not significantly different from it."""
    others = [c for c in pool if c.id != leader.id]
    p = [v for _, v in p_against(leader, others)]
    p_holm = _holm([1.0 if math.isnan(v) else v for v in p]) if others else []
    return [leader] + [c for c, ph in zip(others, p_holm, strict=True) if not ph < level]


def choose(pool: Sequence[Candidate], by_id: Mapping[str, Assessment], level: float) -> Candidate:
    """The best of ``pool``: the leader by mean Δ (vanilla's Δ is 0), the equally good
    ones with it, those with evidence of a smaller std first, then the cheaper, then the
    higher mean."""

    def delta(c: Candidate) -> float:
        if c.is_vanilla:
            return 0.0
        d = by_id[c.id].delta
        return -math.inf if math.isnan(d) else d

    leader = max(pool, key=lambda c: (delta(c), [-v for v in c.cost], c.id))
    tied = _equally_good(leader, pool, level)
    steady = [c for c in tied if not c.is_vanilla and by_id[c.id].steadier]
    tied = steady or tied
    return min(tied, key=lambda c: (c.cost, -delta(c), c.id))


def count_flags(candidates: Iterable[Candidate]) -> dict[str, int]:
    """Flagged seeds (``diverged``, ``one class``) over the candidates, per flag."""
    flags: dict[str, int] = {}
    for c in candidates:
        for flag in c.flags.values():
            flags[flag] = flags.get(flag, 0) + 1
    return flags


def decide(
    candidates: Sequence[Candidate],
    *,
    metric: str,
    settings: DecisionSettings | None = None,
    level: float | None = None,
    family_size: int | None = None,
    eliminated: Iterable[str] = (),
    power: bool = True,
) -> Decision:
    """The verdict of one dataset (module docstring). Needs a vanilla candidate."""
    settings = settings or DecisionSettings()
    level = settings.alpha if level is None else level
    margin = settings.margin_for(metric)
    if not any(c.is_vanilla for c in candidates):
        raise ValueError("a decision needs vanilla among the candidates")
    gone = set(eliminated)
    rows = assess(candidates, metric=metric, settings=settings, level=level,
                  family_size=family_size, eliminated=gone, power=power)  # fmt: skip
    by_id = {a.id: a for a in rows}
    vanilla = next(c for c in candidates if c.is_vanilla)
    flags = count_flags(candidates)
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(c.group, []).append(c)
    picks: dict[str, Candidate] = {}
    for group, members in groups.items():
        alive = [c for c in members if c.is_vanilla or c.id not in gone] or members
        better = [c for c in alive if not c.is_vanilla and by_id[c.id].status == "better"]
        picks[group] = choose(better or alive, by_id, level)
    better_picks = [
        c
        for c in picks.values()
        if not c.is_vanilla and by_id[c.id].status == "better" and c.id not in gone
    ]
    # a candidate without pairs could be anything: it keeps the verdict open
    contenders = [a for a in rows if not a.eliminated and a.status != "worse"]
    base = dict(metric=metric, alpha=settings.alpha, margin=margin, level=level,
                assessments=rows, flags=flags,
                picks={g: c.id for g, c in picks.items()})  # fmt: skip
    if better_picks:
        chosen = choose(better_picks, by_id, level)
        a = by_id[chosen.id]
        return Decision(verdict="better", chosen=chosen.id, chosen_label=chosen.label,
                        reason=f"{chosen.label} beats vanilla by {a.delta:+.4f} "
                        f"(paired, Holm p={a.p_holm:.3g}, n={a.n})", **base)  # fmt: skip
    if not rows:
        return Decision(verdict="unresolved", chosen=vanilla.id, chosen_label=vanilla.label,
                        reason="nothing to compare with vanilla", **base)  # fmt: skip
    constant = bool(vanilla.values) and all(
        vanilla.flags.get(seed) == "one class" for seed in vanilla.values
    )
    if constant and contenders:
        # a constant predictor scores the label distribution, identically on every seed:
        # a spread of zero makes any TOST pass, and "equivalent" would be about nothing
        return Decision(verdict="unresolved", chosen=vanilla.id, chosen_label=vanilla.label,
                        reason="vanilla predicts one class on every seed, so no "
                        "configuration can be shown equivalent to it; fix the runs (lr, "
                        "steps, data) before comparing", **base)  # fmt: skip
    if all(a.status == "equivalent" for a in contenders):
        why = (
            f"every configuration that could be best is within ±{margin:g} of vanilla (TOST)"
            if contenders
            else "every other configuration is worse than vanilla"
        )
        return Decision(verdict="equivalent", chosen=vanilla.id, chosen_label=vanilla.label,
                        reason=why, **base)  # fmt: skip
    open_ = [a for a in contenders if a.status == "unresolved"] or contenders
    lead = max(open_, key=lambda a: -math.inf if math.isnan(a.delta) else a.delta)
    need = lead.seeds_needed
    if lead.n < 2:
        need_txt = "more seeds paired with vanilla"
    elif math.isfinite(need):
        need_txt = f"about {int(need)} seeds"
    elif math.isnan(need):
        need_txt = "more seeds"
    else:
        need_txt = f"over {MAX_SEEDS_REPORTED} seeds"
    return Decision(
        verdict="unresolved",
        chosen=vanilla.id,
        chosen_label=vanilla.label,
        reason=f"leading contender {lead.label} (Δ {lead.delta:+.4f}, n={lead.n}) is neither "
        f"shown better nor within ±{margin:g}; {need_txt} would resolve it"
        + (f" (as {lead.resolves_as})" if lead.resolves_as else ""),
        contender=lead.id,
        seeds_to_resolve=need,
        **base,
    )
