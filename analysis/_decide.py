"""The decision of a dataset: is anything better than vanilla, the same, or not known yet.

One rule, used by the report after a sweep and by the seed race after every round
(``sweeps/race.py``); docs/analysis.md ("Decisions") states it for users. Pure: values in,
a :class:`Decision` out, no pandas and no files.

* A *candidate* is one model of one configuration (SDA's student, or its teacher) with its
  dev score per seed. Every candidate is compared with vanilla **paired by seed** (same
  seed: same data order and head initialisation) on the seeds both have.
* ``better`` / ``worse``: the paired t-test (``scipy.stats.ttest_rel``), Holm-corrected
  over the dataset's candidates (``analysis.holm``), rejects
  at the level α in the direction of Δ. ``better`` tests Δ = ``decision.min_gain``
  (default 0) and needs Δ above it. Seeds whose differences are all equal (a discrete
  metric's tie) get the exact sign-flip test (``analysis._exact``), never p = 0. A race
  tests Holm's j-th step at its look's group-sequential boundary for α/(m − j)
  (``analysis._sequential.Boundary``).
* ``equivalent``: the paired two one-sided tests against ±margin
  (``statsmodels.stats.weightstats.ttost_paired``) reject at α.
* The dataset's verdict: ``better`` if a candidate is better (the chosen one is the best
  of those, below); else ``equivalent`` if every candidate that could be best (not
  ``worse``) is equivalent (an intersection–union test: each at α, no correction); else
  ``unresolved``, naming the leading contender and the seeds that would resolve it.
  Vanilla is chosen unless the verdict is ``better``.
* Choosing among candidates: the leader (highest mean Δ) and every candidate shown
  equivalent to it (paired TOST against ±margin) are equally good; among those a
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

from analysis._failures import Failures, blocks_better, failures
from analysis._sequential import SINGLE_LOOK, Boundary

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
    min_gain: float = 0.0  # ``better`` means better by more than this (``decision.min_gain``)
    # ``better`` needs the failure rate shown below this (None: not shown above vanilla's)
    max_failure_rate: float | None = None
    # (dataset, settings) of datasets decided otherwise: a report over several runs
    # decides each dataset by its own spec's ``decision:`` (``of``)
    by_dataset: tuple[tuple[str, DecisionSettings], ...] = ()

    def of(self, dataset: str) -> DecisionSettings:
        """The settings ``dataset`` is decided by (a report's "rte [optim.lr=2e-05]" is
        the spec's dataset ``rte``)."""
        own = dict(self.by_dataset)
        return own.get(dataset) or own.get(dataset.split(" [", 1)[0], self)

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
    failures: Failures | None = None  # its collapsed and diverged seeds
    held_back: str = ""  # why a Δ shown better is not ``better`` (its failures)


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
    vanilla_failures: Failures | None = None

    def assessment(self, cid: str) -> Assessment:
        return next(a for a in self.assessments if a.id == cid)


# -- tests --------------------------------------------------------------------------
def _holm(p: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p (``analysis.holm``, equal to statsmodels' ``multipletests(...,
    "holm")``, which runs a full garbage collection per call: too slow for a race)."""
    from analysis._compare import holm

    return holm(p)


def step_down(p: Sequence[float], alpha: float, boundary: Boundary = SINGLE_LOOK) -> np.ndarray:
    """Holm's step-down, each step at the look's boundary: the j-th smallest of the m
    p-values (0-based) is rejected at ``boundary.now(alpha / (m − j))`` while every
    smaller one was (NaN never is). At a single look this is Holm at α exactly."""
    p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
    m = len(p)
    rejected = np.zeros(m, dtype=bool)
    for j, i in enumerate(np.argsort(p, kind="stable")):
        if not p[i] < boundary.now(alpha / (m - j)):
            break
        rejected[i] = True
    return rejected


def paired_tests(
    x: np.ndarray, y: np.ndarray, *, margin: float, level: float, min_gain: float = 0.0
) -> dict:
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

    A row whose differences are all equal has no spread: the t statistic is infinite, so
    that row gets the exact sign-flip test's results instead (``analysis._exact``): ``p``
    2^(1−n) (1 when every difference is 0), ``tost_p`` 2^(−n) when the difference is
    inside the margin (else 1), and an interval that is unbounded until the test can
    reject. ``p_gain``: the two-sided p of mean(x − y) = ``min_gain`` (``p`` when 0).
    """
    from scipy import special

    from analysis import _exact as exact

    d = x - y
    n = d.shape[1]
    df = n - 1
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    flat = exact.flat(d, np.maximum(np.abs(x).max(axis=1), np.abs(y).max(axis=1)))
    sd = np.where(flat, 0.0, sd)  # float rounding is no spread (analysis._exact.FLAT)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / math.sqrt(n)
        p = 2 * special.stdtr(df, -np.abs(mean / se))
        p_gain = 2 * special.stdtr(df, -np.abs((mean - min_gain) / se))
        if math.isfinite(margin):
            above_low = special.stdtr(df, -(mean + margin) / se)  # H1: mean > −margin
            below_high = special.stdtr(df, (mean - margin) / se)  # H1: mean < +margin
            tost = np.maximum(above_low, below_high)
        else:
            tost = np.full(len(d), np.nan)
        half = special.stdtrit(df, 1 - level / 2) * se
    zero = exact.flat(np.stack([mean, np.zeros_like(mean)], axis=1))
    at_gain = exact.flat(np.stack([mean, np.full_like(mean, min_gain)], axis=1))
    p = np.where(flat, np.where(zero, 1.0, exact.two_sided_p(n)), p)
    p_gain = np.where(flat, np.where(at_gain, 1.0, exact.two_sided_p(n)), p_gain)
    tost = np.where(flat, np.where(np.abs(mean) < margin, exact.one_sided_p(n), 1.0), tost)
    half = np.where(flat, exact.half_width(n, level), half)
    return {"delta": mean, "sd": sd, "p": p, "p_gain": p_gain, "tost_p": tost,
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


SEED_COUNTS = np.arange(2, MAX_SEEDS_REPORTED + 1)  # the n "seeds to resolve" searches


def _seeds_for(effect: float, alpha: float | np.ndarray, alternative: str) -> float:
    """Total seeds for 80 % power at ``effect`` (in sd units of the paired differences),
    from ``TTestPower.power`` over n = 2 … 1000; inf beyond. ``alpha``: one level, or
    the level at each n of :data:`SEED_COUNTS` (a race tests a look at n seeds at that
    look's boundary, not at the current one's)."""
    from statsmodels.stats.power import TTestPower

    if not effect > 0:
        return math.inf
    if not math.isfinite(effect):
        return 2.0
    n = SEED_COUNTS
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
    boundary: Boundary = SINGLE_LOOK,
    family_size: int | None = None,
    eliminated: Mapping[str, str] | None = None,
    power: bool = True,
) -> list[Assessment]:
    """Every non-vanilla candidate against vanilla, with its status at this look.

    ``boundary`` turns a local level into this look's nominal one (α itself for a
    decision made once; a race passes its look's, ``analysis._sequential``);
    ``family_size`` is the Holm family's size (default: the candidates given; a race
    keeps the size it started with). ``eliminated``: candidates a race stopped, each
    with the status it had at the look it stopped at. Their data no longer grows, and
    testing them again at a later, looser look would spend their α twice, so they keep
    that status, take no part in this look's rejections and are never chosen. ``power``:
    also the minimum detectable effect and the seeds to resolve (a race's interim looks
    skip them; nothing else depends on them).
    """
    alpha, gain = settings.alpha, settings.min_gain
    level = boundary.now(alpha)
    margin = settings.margin_for(metric)
    vanilla = next(c for c in candidates if c.is_vanilla)
    out_ids = dict(eliminated or {})
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
        a.failures = failures(c.flags, sorted(c.values), vanilla.flags,
                              sorted(set(c.values) & set(vanilla.values)), alpha)  # fmt: skip
        rows.append(a)
    claims = []  # per candidate, the p of the one claim its Δ could support
    tests = tests_against(vanilla, others, margin=margin, level=level, min_gain=gain)
    for a, res in zip(rows, tests, strict=True):
        claims.append(1.0)
        if res is None:
            continue
        a.sd_diff, a.p, a.tost_p = res["sd"], res["p"], res["tost_p"]
        a.ci_low, a.ci_high = res["ci_low"], res["ci_high"]
        # better: by more than min_gain; worse: below 0; in between no claim is possible
        claims[-1] = res["p_gain"] if a.delta > gain else (res["p"] if a.delta < 0 else 1.0)
        if a.eliminated:
            claims[-1] = 1.0  # tested at the look it stopped at, not again
        if power:
            a.mde = _mde(a.n, a.sd_diff, boundary.now(alpha / m))
    # Holm over the whole family (a candidate without data: a hypothesis not rejected),
    # each step at this look's boundary for its share of α
    p_family = claims + [1.0] * (m - len(rows))
    rejected = step_down(p_family, alpha, boundary)
    for a, ph, hit in zip(rows, _holm(p_family)[: len(rows)], rejected, strict=False):
        a.p_holm = float(ph)
        a.held_back = ""
        if hit and a.delta > 0:
            a.held_back = blocks_better(a.failures, alpha, settings.max_failure_rate)
        if hit and not a.held_back:
            a.status = "better" if a.delta > 0 else "worse"
        elif a.tost_p < level:
            a.status = "equivalent"
        if a.eliminated:
            a.status = out_ids[a.id]
        if power:
            _resolution(a, alpha, m, boundary, margin, gain)
    for a, (x, y) in zip(rows, pairs, strict=True):
        a.bf_p = math.nan if a.eliminated else _bf_p(x, y)
    for a, bh in zip(rows, _holm([a.bf_p for a in rows]), strict=True):
        a.bf_p_holm = float(bh)
        a.steadier = bool(bh < level and a.std_ratio < 1)
    return rows


def _resolution(
    a: Assessment, alpha: float, m: int, boundary: Boundary, margin: float, gain: float
) -> None:
    """Seeds that would resolve the observed Δ at its observed spread (NaN: resolved),
    each n tested at the level a look at n seeds would use (the first Holm step's, α/m,
    for better/worse; α for equivalence)."""
    if a.status != "unresolved" or a.n < 2 or not math.isfinite(a.sd_diff):
        return
    from analysis._exact import seeds_to_reject

    routes = []
    shift = gain if a.delta > 0 else 0.0
    diff_levels = boundary.at_n(SEED_COUNTS, alpha / m)
    equiv_levels = boundary.at_n(SEED_COUNTS, alpha)
    # equal differences (no spread): the exact test's seeds, if they stay equal
    if abs(a.delta) > shift:
        n = (
            seeds_to_reject(diff_levels, SEED_COUNTS)
            if a.sd_diff == 0
            else _seeds_for((abs(a.delta) - shift) / a.sd_diff, diff_levels, "two-sided")
        )
        routes.append((n, "better" if a.delta > 0 else "worse"))  # fmt: skip
    if abs(a.delta) < margin:
        n = (
            seeds_to_reject(equiv_levels, SEED_COUNTS, sides=1)
            if a.sd_diff == 0
            else _seeds_for((margin - abs(a.delta)) / a.sd_diff, equiv_levels, "larger")
        )
        routes.append((n, "equivalent"))  # fmt: skip
    if not routes:
        a.seeds_needed, a.resolves_as = math.inf, ""
        return
    n, how = min(routes)
    n = boundary.look_at(n)  # a race decides at its looks only
    a.seeds_needed, a.resolves_as = (n if n <= MAX_SEEDS_REPORTED else math.inf), how


def tests_against(
    ref: Candidate,
    others: Sequence[Candidate],
    *,
    margin: float,
    level: float,
    min_gain: float = 0.0,
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
        res = paired_tests(x, y, margin=margin, level=level, min_gain=min_gain)
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


def _equally_good(
    leader: Candidate, pool: Sequence[Candidate], level: float, margin: float
) -> list[Candidate]:
    """The leader and the candidates of ``pool`` shown equivalent to it (paired TOST
    against ±margin at ``level``): "not significantly different" is not "as good", the
    same rule the verdict's ``equivalent`` follows."""
    others = [c for c in pool if c.id != leader.id]
    tests = tests_against(leader, others, margin=margin, level=level)
    return [leader] + [
        c for c, t in zip(others, tests, strict=True) if t is not None and t["tost_p"] < level
    ]


def choose(
    pool: Sequence[Candidate], by_id: Mapping[str, Assessment], level: float, margin: float
) -> Candidate:
    """The best of ``pool``: the leader by mean Δ (vanilla's Δ is 0) and those shown
    equivalent to it, those with evidence of a smaller std first, then the cheaper, then
    the higher mean."""

    def delta(c: Candidate) -> float:
        if c.is_vanilla:
            return 0.0
        d = by_id[c.id].delta
        return -math.inf if math.isnan(d) else d

    leader = max(pool, key=lambda c: (delta(c), [-v for v in c.cost], c.id))
    tied = _equally_good(leader, pool, level, margin)
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
    boundary: Boundary = SINGLE_LOOK,
    family_size: int | None = None,
    eliminated: Mapping[str, str] | None = None,
    power: bool = True,
) -> Decision:
    """The verdict of one dataset (module docstring). Needs a vanilla candidate."""
    settings = settings or DecisionSettings()
    level = boundary.now(settings.alpha)
    margin = settings.margin_for(metric)
    if not any(c.is_vanilla for c in candidates):
        raise ValueError("a decision needs vanilla among the candidates")
    gone = dict(eliminated or {})
    rows = assess(candidates, metric=metric, settings=settings, boundary=boundary,
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
        picks[group] = choose(better or alive, by_id, level, margin)
    better_picks = [
        c
        for c in picks.values()
        if not c.is_vanilla and by_id[c.id].status == "better" and c.id not in gone
    ]
    # a candidate without pairs could be anything: it keeps the verdict open
    contenders = [a for a in rows if not a.eliminated and a.status != "worse"]
    vanilla_seeds = sorted(vanilla.values)
    base = dict(metric=metric, alpha=settings.alpha, margin=margin, level=level,
                assessments=rows, flags=flags,
                vanilla_failures=failures(vanilla.flags, vanilla_seeds, vanilla.flags,
                                          vanilla_seeds, settings.alpha),
                picks={g: c.id for g, c in picks.items()})  # fmt: skip
    if better_picks:
        chosen = choose(better_picks, by_id, level, margin)
        a = by_id[chosen.id]
        return Decision(verdict="better", chosen=chosen.id, chosen_label=chosen.label,
                        reason=f"{chosen.label} beats vanilla by {a.delta:+.4f} "
                        + (f"(more than the minimum gain {settings.min_gain:g}) "
                           if settings.min_gain else "")
                        + f"(paired, Holm p={a.p_holm:.3g}, n={a.n})", **base)  # fmt: skip
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
    if lead.held_back:
        return Decision(verdict="unresolved", chosen=vanilla.id, chosen_label=vanilla.label,
                        reason=f"{lead.label} is ahead of vanilla (Δ {lead.delta:+.4f}, "
                        f"n={lead.n}) but not better: {lead.held_back}",
                        contender=lead.id, **base)  # fmt: skip
    need = lead.seeds_needed
    if lead.n < 2:
        need_txt = "more seeds paired with vanilla"
    elif math.isfinite(need):
        need_txt = f"about {int(need)} seeds"
        if boundary.looks and need > boundary.looks[-1]:  # a race cannot get there
            need_txt += f", more than the race's max of {boundary.looks[-1]},"
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
