"""The decision rule (analysis/_decide.py): its tests against scipy/statsmodels, its
verdicts on hand-made candidates, how it chooses among equally good ones, the cost order,
and its error rates by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from analysis._decide import (
    VERDICTS,
    Candidate,
    DecisionSettings,
    _bf_p,
    _mde,
    _seeds_for,
    decide,
    paired_tests,
)
from analysis._sequential import Boundary
from trainer.strategies import cost_rank

ALPHA = 0.05
MARGIN = 0.01  # the default for accuracy


def standardized(rng: np.random.Generator, n: int) -> np.ndarray:
    """n draws with mean exactly 0 and sample std (ddof=1) exactly 1."""
    z = rng.standard_normal(n)
    z -= z.mean()
    return z / z.std(ddof=1)


def vanilla(values, group: str = "vanilla") -> Candidate:
    return Candidate("vanilla", "vanilla", group, dict(enumerate(values)), (0,), is_vanilla=True)


def cand(cid: str, values, group: str = "sda", cost: tuple = (2, 1.0)) -> Candidate:
    return Candidate(cid, cid.upper(), group, dict(enumerate(values)), cost)


def values_of(c: Candidate) -> np.ndarray:
    return np.array([c.values[s] for s in sorted(c.values)])


# -- the tests themselves, against the libraries -------------------------------------
@pytest.mark.parametrize(
    ("rows", "n", "margin", "level"),
    [(1, 3, 0.01, 0.05), (4, 5, 0.01, 0.05), (7, 12, 0.005, 0.1), (3, 20, 0.02, 0.01),
     (5, 8, 0.01, 0.05)],
)  # fmt: skip
def test_paired_tests_match_scipy_and_statsmodels(rows, n, margin, level):
    rng = np.random.default_rng(1000 * rows + n)
    y = rng.normal(0.8, 0.02, (rows, n))
    # row means from well below −margin to well above +margin: both signs of both t's
    shift = np.linspace(-3 * margin, 3 * margin, rows)[:, None]
    x = y + shift + rng.normal(0.0, margin, (rows, n))
    res = paired_tests(x, y, margin=margin, level=level)
    tol = {"rel": 1e-10, "abs": 1e-12}
    for i in range(rows):
        d = x[i] - y[i]
        assert res["delta"][i] == pytest.approx(d.mean(), **tol)
        assert res["sd"][i] == pytest.approx(d.std(ddof=1), **tol)
        assert res["p"][i] == pytest.approx(stats.ttest_rel(x[i], y[i]).pvalue, **tol)
        assert res["tost_p"][i] == pytest.approx(
            ttost_paired(x[i], y[i], -margin, margin)[0], **tol
        )
        half = stats.t.ppf(1 - level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
        assert res["ci_low"][i] == pytest.approx(d.mean() - half, **tol)
        assert res["ci_high"][i] == pytest.approx(d.mean() + half, **tol)
    # the generated data covers both outcomes of the tests, so the comparison means something
    assert (res["tost_p"] < level).any() or rows == 1
    assert (res["tost_p"] > 0.5).any()


def test_paired_tests_without_margin():
    rng = np.random.default_rng(7)
    y = rng.normal(0.8, 0.02, (3, 6))
    x = y + rng.normal(0.01, 0.01, (3, 6))
    res = paired_tests(x, y, margin=math.inf, level=0.05)
    assert np.isnan(res["tost_p"]).all()
    for i in range(3):
        assert res["p"][i] == pytest.approx(stats.ttest_rel(x[i], y[i]).pvalue, rel=1e-10)


def test_paired_tests_constant_differences():
    # binary fractions: x − y is exactly the constant, so the differences have no spread
    y = np.array([0.75, 0.8125, 0.6875, 0.78125, 0.71875])
    consts = [0.0, 2**-8, -(2**-8), 2**-5, -(2**-5)]  # 0, ±0.0039 (inside), ±0.031 (outside)
    rng = np.random.default_rng(3)
    noisy = y + rng.normal(0.0, 0.01, 5)  # a row with spread among the flat ones
    x = np.vstack([y + c for c in consts] + [noisy])
    yy = np.vstack([y] * len(x))
    res = paired_tests(x, yy, margin=MARGIN, level=0.05)
    assert list(res["sd"][:5]) == [0.0] * 5
    # the exact sign-flip test, not an infinite t: 2 of the 2^5 sign patterns are as extreme
    for i, c in enumerate(consts):
        flips = stats.permutation_test(
            (x[i], y), lambda a, b: np.mean(a - b), permutation_type="samples",
            alternative="two-sided", n_resamples=np.inf,
        )  # fmt: skip
        assert res["p"][i] == pytest.approx(flips.pvalue if c else 1.0, rel=1e-9)
    assert list(res["p"][:5]) == [1.0] + [2**-4] * 4
    assert list(res["tost_p"][:5]) == [2**-5, 2**-5, 2**-5, 1.0, 1.0]
    # 2^-4 > 0.05: at 5 seeds nothing can be excluded; at 7 the test can reject
    assert np.isinf(res["ci_low"][:5]).all() and np.isinf(res["ci_high"][:5]).all()
    seven = paired_tests(np.full((1, 7), 0.8 + 2**-8), np.full((1, 7), 0.8), margin=MARGIN,
                         level=0.05)  # fmt: skip
    assert seven["p"][0] == 2**-6 and seven["ci_low"][0] == seven["ci_high"][0] == 2**-8
    # the row with spread is untouched by the flat rows' special case
    assert res["p"][5] == pytest.approx(stats.ttest_rel(noisy, y).pvalue, rel=1e-10)
    assert res["tost_p"][5] == pytest.approx(ttost_paired(noisy, y, -MARGIN, MARGIN)[0])


def test_brown_forsythe_matches_levene_median():
    rng = np.random.default_rng(11)
    for n in (3, 4, 5, 9, 20):
        for ratio in (0.2, 1.0, 3.0):
            x, y = rng.normal(0.8, 0.01 * ratio, n), rng.normal(0.8, 0.01, n)
            assert _bf_p(x, y) == pytest.approx(
                stats.levene(x, y, center="median").pvalue, rel=1e-12
            )
    assert math.isnan(_bf_p(np.array([0.8, 0.81]), np.array([0.7, 0.75])))
    assert math.isnan(_bf_p(np.array([0.8]), np.array([0.7])))
    assert math.isnan(_bf_p(np.full(4, 0.8), np.full(4, 0.8)))  # no spread at all


# -- power --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "sd", "alpha"), [(3, 0.01, 0.05), (5, 0.02, 0.0125), (12, 1.0, 0.05), (20, 0.005, 0.01)]
)
def test_mde_has_80_percent_power(n, sd, alpha):
    mde = _mde(n, sd, alpha)
    assert mde > 0
    assert TTestPower().power(mde / sd, n, alpha) == pytest.approx(0.8, abs=1e-6)
    assert _mde(n, 2 * sd, alpha) == pytest.approx(2 * mde, rel=1e-6)  # in units of sd
    assert _mde(n + 5, sd, alpha) < mde  # more seeds detect less


def test_mde_degenerate():
    assert math.isnan(_mde(1, 0.01, 0.05))
    assert math.isnan(_mde(5, math.nan, 0.05))
    assert _mde(5, 0.0, 0.05) == 0.0


@pytest.mark.parametrize("effect", [0.3, 0.8, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("alpha", [0.05, 0.0125])
def test_seeds_for_is_the_smallest_n_with_80_percent_power(effect, alpha):
    n = _seeds_for(effect, alpha, "two-sided")
    assert math.isfinite(n) and n == int(n) and n >= 2
    assert TTestPower().power(effect, n, alpha) >= 0.8
    if n > 2:
        assert TTestPower().power(effect, n - 1, alpha) < 0.8
    one = _seeds_for(effect, alpha, "larger")
    assert one <= n  # one-sided needs no more
    assert TTestPower().power(effect, one, alpha, alternative="larger") >= 0.8


def test_seeds_for_degenerate():
    assert _seeds_for(0.0, 0.05, "two-sided") == math.inf
    assert _seeds_for(-1.0, 0.05, "two-sided") == math.inf
    assert _seeds_for(math.nan, 0.05, "two-sided") == math.inf
    assert _seeds_for(0.01, 0.05, "two-sided") == math.inf  # needs more than 1000


# -- verdicts -----------------------------------------------------------------------
V5 = [0.80, 0.82, 0.78, 0.81, 0.79]
NOISE5 = [0.001, -0.002, 0.0, 0.002, -0.001]


def test_clearly_better_is_chosen():
    better = cand("b", [v + 0.03 + e for v, e in zip(V5, NOISE5, strict=True)])
    null = cand("n", [v + e for v, e in zip(V5, NOISE5[::-1], strict=True)], cost=(1,))
    d = decide([vanilla(V5), better, null], metric="accuracy")
    assert d.verdict == "better"
    assert d.chosen == "b" and d.chosen_label == "B"
    assert d.assessment("b").status == "better" and d.assessment("b").p_holm < ALPHA
    assert d.assessment("n").status != "better"
    assert d.picks["sda"] == "b" and d.picks["vanilla"] == "vanilla"
    assert "B" in d.reason


def test_only_worse_is_equivalent_to_vanilla():
    worse = [
        cand(f"w{k}", [v - 0.03 * k + e for v, e in zip(V5, NOISE5, strict=True)]) for k in (1, 2)
    ]
    d = decide([vanilla(V5), *worse], metric="accuracy")
    assert all(a.status == "worse" for a in d.assessments)
    assert d.verdict == "equivalent"
    assert d.chosen == "vanilla"
    assert "worse" in d.reason


def test_tiny_differences_are_equivalent():
    rng = np.random.default_rng(5)
    v = 0.8 + 0.01 * standardized(rng, 12)
    cands = [cand(f"c{j}", v + 0.0002 * j + 0.002 * standardized(rng, 12)) for j in range(3)]
    d = decide([vanilla(v), *cands], metric="accuracy")
    assert [a.status for a in d.assessments] == ["equivalent"] * 3
    assert all(a.tost_p < ALPHA and a.p_holm >= ALPHA for a in d.assessments)
    assert d.verdict == "equivalent" and d.chosen == "vanilla"
    assert "±0.01" in d.reason


def test_noisy_gain_at_three_seeds_is_unresolved():
    v = [0.80, 0.82, 0.78]
    gain = cand("g", [a + b for a, b in zip(v, [0.03, -0.005, 0.04], strict=True)])
    small = cand("s", [a + b for a, b in zip(v, [0.004, -0.006, 0.002], strict=True)], cost=(1,))
    d = decide([vanilla(v), gain, small], metric="accuracy")
    assert d.verdict == "unresolved"
    assert d.chosen == "vanilla"
    assert d.contender == "g"
    a = d.assessment("g")
    assert a.status == "unresolved" and a.delta > 0
    assert math.isfinite(d.seeds_to_resolve) and d.seeds_to_resolve > 3
    assert d.seeds_to_resolve == a.seeds_needed and a.resolves_as == "better"
    assert f"about {int(d.seeds_to_resolve)} seeds" in d.reason and "G" in d.reason
    assert a.mde > a.delta  # not detectable at 3 seeds: that is why it is unresolved


def test_too_few_common_seeds_do_not_crash():
    one = Candidate("one", "ONE", "sda", {0: 0.85}, (2, 1.0))  # one common seed
    none = Candidate("none", "NONE", "sda", {99: 0.85}, (2, 2.0))  # no common seed
    good = cand("good", [v + 0.001 for v in V5], group="se", cost=(1,))
    for cs in ([one], [one, none], [none, good], [one, none, good]):
        d = decide([vanilla(V5), *cs], metric="accuracy")
        assert d.verdict in VERDICTS and d.chosen in {"vanilla", "good"}
        assert d.assessment(cs[0].id).status == "unresolved"
        assert d.assessment(cs[0].id).n == (1 if cs[0] is one else 0)


def test_no_common_seeds_is_not_equivalent():
    """A candidate with no seed in common with vanilla could be anything."""
    none = Candidate("none", "NONE", "sda", {99: 0.85}, (2, 1.0))
    d = decide([vanilla(V5), none], metric="accuracy")
    assert d.verdict == "unresolved"


def test_needs_vanilla():
    with pytest.raises(ValueError, match="vanilla"):
        decide([cand("a", V5)], metric="accuracy")


# -- choosing among equally good ones -------------------------------------------------
@pytest.mark.parametrize("groups", [("sda", "sda"), ("se", "sda")])
def test_smaller_std_without_evidence_does_not_win(groups):
    rng = np.random.default_rng(21)
    n = 6
    v = 0.80 + 0.01 * standardized(rng, n)
    cheap_values = v + 0.030 + 0.004 * standardized(rng, n)
    cheap = cand("cheap", cheap_values, groups[0], cost_rank("se"))
    # the same seeds' runs a little higher and shrunk towards their mean: steadier-looking,
    # dearer, shown equivalent to the cheap one, and only 6 seeds of evidence on the std
    steady = cheap_values.mean() + 0.7 * (cheap_values - cheap_values.mean()) + 0.001
    dear = cand(
        "dear", steady, groups[1], cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0})
    )
    d = decide([vanilla(v), cheap, dear], metric="accuracy")
    a_cheap, a_dear = d.assessment("cheap"), d.assessment("dear")
    # the premises: both better, the dear one leads and has the smaller std, no evidence
    assert a_cheap.status == a_dear.status == "better"
    assert a_dear.delta > a_cheap.delta
    assert a_dear.std < a_cheap.std and a_dear.std_ratio < 1
    assert a_dear.bf_p_holm >= ALPHA and not a_dear.steadier and not a_cheap.steadier
    assert ttost_paired(cheap_values, steady, -MARGIN, MARGIN)[0] < ALPHA  # equally good
    assert d.verdict == "better"
    assert d.chosen == "cheap"


def test_not_significantly_different_is_not_equally_good():
    """Two winners whose difference is neither significant nor shown inside the margin:
    the leader is chosen, however cheap the other (issue 27: absence of a difference is
    not equivalence, here as in the verdict)."""
    rng = np.random.default_rng(21)
    n = 6
    v = 0.80 + 0.01 * standardized(rng, n)
    cheap_values = v + 0.030 + 0.004 * standardized(rng, n)
    steady = 0.80 + 0.031 + 0.006 * standardized(rng, n)
    cheap = cand("cheap", cheap_values, "se", cost_rank("se"))
    dear = cand("dear", steady, "sda", cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0}))
    d = decide([vanilla(v), cheap, dear], metric="accuracy")
    assert d.assessment("cheap").status == d.assessment("dear").status == "better"
    assert stats.ttest_rel(cheap_values, steady).pvalue > ALPHA  # not different ...
    assert ttost_paired(cheap_values, steady, -MARGIN, MARGIN)[0] >= ALPHA  # ... nor the same
    assert d.verdict == "better" and d.chosen == "dear"


@pytest.mark.parametrize("groups", [("sda", "sda"), ("se", "sda")])
def test_evidence_of_smaller_std_wins_over_cost(groups):
    rng = np.random.default_rng(22)
    n = 20
    v = 0.80 + 0.01 * standardized(rng, n)
    cheap = cand("cheap", v + 0.03 + 0.001 * standardized(rng, n), groups[0], cost_rank("se"))
    steady = 0.80 + 0.03 + 0.001 * standardized(rng, n)  # a tenth of vanilla's std
    dear = cand(
        "dear", steady, groups[1], cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0})
    )
    d = decide([vanilla(v), cheap, dear], metric="accuracy")
    a_cheap, a_dear = d.assessment("cheap"), d.assessment("dear")
    assert a_cheap.status == a_dear.status == "better"
    assert a_dear.std_ratio == pytest.approx(0.1)
    assert a_dear.bf_p_holm < ALPHA and a_dear.steadier
    assert not a_cheap.steadier
    assert stats.ttest_rel(values_of(cheap), steady).pvalue > ALPHA  # equally good
    assert d.verdict == "better"
    assert d.chosen == "dear"


def test_choice_is_one_of_the_picks():
    rng = np.random.default_rng(31)
    verdicts = set()
    for i in range(30):
        n = int(rng.integers(3, 9))
        seed = rng.standard_normal(n) * math.sqrt(0.5)
        noise = 0.01 * math.sqrt(0.5)
        v = 0.8 + 0.01 * seed + noise * rng.standard_normal(n)
        cands = [
            cand(
                f"{g}{j}",
                0.8 + 0.01 * (seed + rng.uniform(-2, 3)) + noise * rng.standard_normal(n),
                group=g,
                cost=cost_rank(g, {"distill.k": j + 1}),
            )
            for g in ("se", "sda")
            for j in range(2)
        ]
        # the power computations are slow and do not change the verdict: a third with them
        d = decide([vanilla(v), *cands], metric="accuracy", power=i % 3 == 0)
        verdicts.add(d.verdict)
        assert set(d.picks) == {"vanilla", "se", "sda"}
        assert d.picks["vanilla"] == "vanilla"
        for g in ("se", "sda"):
            assert d.picks[g].startswith(g)
        assert d.chosen in d.picks.values() or d.chosen == "vanilla"
        if d.verdict == "better":
            assert d.chosen != "vanilla" and d.assessment(d.chosen).status == "better"
        else:
            assert d.chosen == "vanilla"
    assert verdicts >= {"better", "unresolved"}  # the draws exercise more than one branch


# -- cost order ---------------------------------------------------------------------
def test_cost_rank_order():
    order = [
        cost_rank("vanilla"),
        cost_rank("noisytune"),
        cost_rank("se"),
        cost_rank("noisytune+se"),
        cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0}),
        cost_rank("noisytune+sda", {"distill.k": 1, "distill.lambda": 1.0}),
        cost_rank("sda", {"distill.k": 2, "distill.lambda": 1.0}),
        cost_rank("sda", {"distill.k": "all", "distill.lambda": 1.0}),
        cost_rank("sdv", {"distill.k": 1, "distill.lambda": 1.0}),
        cost_rank("noisytune+sdv", {"distill.k": 1, "distill.lambda": 1.0}),
    ]
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert cost_rank("sda", {"distill.k": 1, "distill.lambda": 0.5}) < cost_rank(
        "sda", {"distill.k": 1, "distill.lambda": 1.0}
    )  # smaller λ first
    assert cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0}) < cost_rank(
        "sda", {"distill.k": 1, "distill.lambda": 1.0}, model="averaged"
    )
    assert cost_rank("sda", {"distill.k": 1, "distill.lambda": 1.0}, model="averaged") < cost_rank(
        "sda", {"distill.k": 2, "distill.lambda": 1.0}
    )
    assert cost_rank("sda", {"distill.k": "all"}) > cost_rank("sda", {"distill.k": 1000})
    assert cost_rank("vanilla", {"distill.k": math.nan, "distill.lambda": math.nan}) == cost_rank(
        "vanilla"
    )


# -- error rates by simulation --------------------------------------------------------
# decide(power=False) skips only the MDE / seeds-to-resolve computations, which the
# statuses and the verdict do not use (checked here once), and is ~10x faster.
# Tolerances: the rate is a binomial proportion over REPS independent reps; a one-sided
# binomial test of "true rate <= α" (scipy.stats.binomtest, alternative="greater") must not
# reject at 0.001, i.e. we fail only when the count is implausible for a correct rule.
REPS = 400


def _too_many(count: int, reps: int, rate: float) -> bool:
    return stats.binomtest(count, reps, rate, alternative="greater").pvalue < 1e-3


def _correlated(rng, n: int, k: int, rho: float = 0.5, shift=0.0) -> np.ndarray:
    """k+1 rows (vanilla first) of n seeds, each of std 1 and correlation rho between rows
    (a shared seed effect); ``shift`` (scalar or k values) is added to the k candidates."""
    seed = math.sqrt(rho) * rng.standard_normal(n)
    rows = seed + math.sqrt(1 - rho) * rng.standard_normal((k + 1, n))
    rows[1:] += np.broadcast_to(np.asarray(shift, dtype=float), (k,))[:, None]
    return rows


def _run(values: np.ndarray, power: bool = False, **kw):
    cs = [vanilla(values[0])] + [
        cand(f"c{j}", values[j + 1], cost=(2, j)) for j in range(len(values) - 1)
    ]
    return decide(cs, metric="accuracy", power=power, **kw)


def test_power_flag_does_not_change_the_verdict():
    rng = np.random.default_rng(40)
    for _ in range(5):
        vals = 0.01 * _correlated(rng, 5, 4, shift=np.array([0.0, 1.0, 2.0, 3.0]))
        a, b = _run(vals, power=True), _run(vals, power=False)
        assert (a.verdict, a.chosen) == (b.verdict, b.chosen)
        assert [x.status for x in a.assessments] == [x.status for x in b.assessments]


def test_null_rarely_claims_better():
    rng = np.random.default_rng(41)
    better = rejected = 0
    for _ in range(REPS):
        d = _run(0.8 + 0.01 * _correlated(rng, 5, 4))
        better += d.verdict == "better"
        rejected += any(a.status in ("better", "worse") for a in d.assessments)
    assert not _too_many(better, REPS, ALPHA), better
    assert not _too_many(rejected, REPS, ALPHA), rejected  # Holm: family-wise error ≤ α


def test_false_equivalence_at_the_margin():
    # true Δ = margin exactly, the boundary of the TOST null; sd of the differences 1.2·margin
    # at 10 seeds is where TOST's size is close to α (≈ 0.045), so the bound is sharp
    rng = np.random.default_rng(42)
    n, equivalent = 10, 0
    for _ in range(REPS):
        v = rng.normal(0.8, 0.01, n)
        c = v + MARGIN + 1.2 * MARGIN * rng.standard_normal(n)
        d = _run(np.vstack([v, c]))
        equivalent += d.assessment("c0").status == "equivalent"
    assert not _too_many(equivalent, REPS, ALPHA), equivalent
    assert equivalent > 0.015 * REPS  # not vacuous: the simulation is in the sharp regime


def test_power_sanity():
    rng = np.random.default_rng(43)
    better = 0
    for _ in range(REPS):
        # seed std 1 (correlation 0.5 with vanilla): +3 seed stds at 5 seeds
        vals = _correlated(rng, 5, 1, shift=np.array([3.0]))
        d = _run(0.8 + 0.01 * vals)
        better += d.verdict == "better" and d.chosen == "c0"
    assert better > 0.8 * REPS, better


def test_settings_margin_and_alpha():
    assert DecisionSettings().margin_for("mcc") == 0.02
    assert DecisionSettings().margin_for("accuracy") == 0.01
    assert DecisionSettings(margin=0.05).margin_for("accuracy") == 0.05
    rng = np.random.default_rng(44)
    v = 0.8 + 0.01 * standardized(rng, 12)
    # Δ 0.006 ± 0.01 at 12 seeds: t ≈ 2.08 (p ≈ 0.06), not within ±0.01, within ±0.05
    vals = np.vstack([v, v + 0.006 + 0.01 * standardized(rng, 12)])
    assert _run(vals).verdict == "unresolved"
    wide = _run(vals, settings=DecisionSettings(margin=0.05))
    assert wide.margin == 0.05 and wide.verdict == "equivalent"
    assert _run(vals, settings=DecisionSettings(alpha=0.1)).verdict == "better"
    # a race look's boundary replaces α
    look = Boundary((3, 5), 1, final=True)
    assert _run(vals, boundary=look).level == look.now(ALPHA) < ALPHA


def test_a_one_class_vanilla_is_never_equivalent():
    """Constant predictors score the label distribution, the same on every seed: zero
    spread passes any TOST, so without this guard two broken runs read 'equivalent'."""
    flagged = {seed: "one class" for seed in range(3)}
    base = Candidate("vanilla", "vanilla", "vanilla", dict.fromkeys(range(3), 0.5), (0,),
                     is_vanilla=True, flags=flagged)  # fmt: skip
    same = Candidate("sda", "SDA", "sda", dict.fromkeys(range(3), 0.5), (2, 1.0), flags=flagged)
    d = decide([base, same], metric="accuracy")
    assert d.verdict == "unresolved" and "one class on every seed" in d.reason
    # one seed that learned is a real run: the comparison stands as before
    runs = {0: 0.5, 1: 0.5, 2: 0.8, 3: 0.79, 4: 0.81}  # 5 seeds: 3 equal ones show nothing
    learned = Candidate("vanilla", "vanilla", "vanilla", runs, (0,), is_vanilla=True,
                        flags={0: "one class", 1: "one class"})  # fmt: skip
    close = Candidate("sda", "SDA", "sda", dict(runs), (2, 1.0))
    assert decide([learned, close], metric="accuracy").verdict == "equivalent"


# -- issue 27: ties, a minimum gain, the level "seeds to resolve" is computed at ----------
def test_tied_differences_are_not_better():
    """Three seeds each one RTE dev example better (+1/277): the differences have no
    spread, and a t-test's p = 0 passed any level; the exact sign-flip p is 0.25."""
    # scores as a metric computes them, k/277: their differences are equal only up to
    # the last bit of a float, which a t-test reads as a spread of 1e-17 (p ~ 1e-28)
    k = np.array([190, 201, 185])
    v, up = k / 277, (k + 1) / 277
    assert np.std(up - v) > 0  # the premise: not exactly flat
    d = decide([vanilla(v), cand("up", up)], metric="accuracy", power=True)
    a = d.assessment("up")
    assert a.p == pytest.approx(0.25) and a.status == "unresolved" and d.verdict == "unresolved"
    assert math.isinf(a.ci_low) and math.isinf(a.ci_high)  # nothing excluded at 3 seeds
    # if the differences stay equal: 5 seeds show them inside ±0.01 (2^-5 < 0.05)
    assert (a.seeds_needed, a.resolves_as) == (5, "equivalent")
    # two seeds (race.start 2): 0.5
    two = decide([vanilla(v[:2]), cand("up", up[:2])], metric="accuracy")
    assert two.assessment("up").p == pytest.approx(0.5) and two.verdict == "unresolved"


def test_min_gain_tests_against_the_gain():
    v = 0.80 + 0.01 * standardized(np.random.default_rng(8), 10)
    up = cand("up", v + 0.012 + 0.003 * standardized(np.random.default_rng(9), 10))
    assert decide([vanilla(v), up], metric="accuracy").verdict == "better"
    wanted = DecisionSettings(min_gain=0.01)
    d = decide([vanilla(v), up], metric="accuracy", settings=wanted)
    a = d.assessment("up")
    # Δ 0.012 is above 0.01 but not shown to be: p of Δ = 0.01 is large
    expect = stats.ttest_1samp(values_of(up) - v, 0.01).pvalue
    assert d.verdict != "better" and a.p_holm == pytest.approx(expect, rel=1e-9)
    assert a.p < ALPHA  # shown above 0 all the same
    far = cand("far", v + 0.03 + 0.003 * standardized(np.random.default_rng(9), 10))
    d = decide([vanilla(v), far], metric="accuracy", settings=wanted)
    assert d.verdict == "better" and "minimum gain 0.01" in d.reason


def test_seeds_to_resolve_use_the_level_of_the_look_at_that_many_seeds():
    rng = np.random.default_rng(12)
    v = 0.80 + 0.01 * standardized(rng, 5)
    gain = cand("g", v + 0.006 + 0.008 * standardized(rng, 5))
    looks = (3, 5, 7, 9, 11, 13, 15)
    look = Boundary(looks, 1)
    d = decide([vanilla(v), gain], metric="accuracy", boundary=look)
    a = d.assessment("g")
    assert a.status == "unresolved" and a.resolves_as == "better"
    n = int(a.seeds_needed)
    effect = a.delta / a.sd_diff
    level_at = look.at_n(np.array([n - 1, n]), ALPHA)
    power = TTestPower().power(effect, np.array([n - 1, n]), level_at)
    assert power[1] >= 0.8 > power[0]  # the smallest n with 80 % power at its look's level
    # at the current look's (much stricter) level it would have said more seeds
    at_now = _seeds_for(effect, look.now(ALPHA), "two-sided")
    assert at_now > n


def test_seeds_beyond_a_races_max_are_said_to_be():
    rng = np.random.default_rng(13)
    v = 0.80 + 0.01 * standardized(rng, 5)
    small = cand("s", v + 0.004 + 0.01 * standardized(rng, 5))
    looks = (3, 5, 7)
    d = decide([vanilla(v), small], metric="accuracy", boundary=Boundary(looks, 1))
    assert d.verdict == "unresolved" and d.seeds_to_resolve > 7
    assert "more than the race's max of 7" in d.reason
    assert "race's max" not in decide([vanilla(v), small], metric="accuracy").reason
