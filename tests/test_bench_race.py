"""bench/race.py, the simulator of the seed race against the grid: its truth, its draws,
its trial accounting and its output lines (a few simulated sweeps, at 7 seeds at most so
the race's group-sequential levels take a second)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "race.py"
SMALL = {"maximum": 7}  # looks at 3, 5, 7 seeds


@pytest.fixture(scope="module")
def race():
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_race", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_race"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_race", None)
    sys.path[:] = saved


def test_right_outcome_on_hand_made_truths(race):
    margin = 0.01
    assert race.right_outcome({"a": 0.0, "b": 0.0}, margin) == ("equivalent", frozenset())
    # the best and whatever is within half a margin of it
    assert race.right_outcome({"a": 0.03, "b": 0.0, "c": 0.026}, margin) == (
        "better",
        frozenset({"a", "c"}),
    )
    # an effect of exactly the margin, as decimal means give it (0.82 − 0.81 < 0.01 in floats)
    assert race.right_outcome({"a": 0.82 - 0.81, "b": 0.0}, margin) == ("better", {"a"})
    assert race.right_outcome({"a": 0.0099, "b": -0.05}, margin)[0] == "equivalent"
    assert race.right_outcome({"a": -0.05}, margin)[0] == "equivalent"
    # MCC's margin is twice accuracy's: +0.015 is within it
    assert race.right_outcome({"a": 0.015}, 0.02)[0] == "equivalent"

    truth = {"a": 0.03, "b": 0.0}
    assert race.is_right("better", "a", truth, margin)
    assert not race.is_right("better", "b", truth, margin)
    assert not race.is_right("equivalent", "vanilla", truth, margin)
    assert not race.is_right("unresolved", "vanilla", truth, margin)
    assert race.is_right("equivalent", "vanilla", {"a": 0.0}, margin)
    assert not race.is_right("better", "a", {"a": 0.0}, margin)

    assert race.is_false_better("better", "a", {"a": 0.0})
    assert race.is_false_better("better", "a", {"a": -0.02})
    assert not race.is_false_better("better", "a", {"a": 0.005})
    assert not race.is_false_better("equivalent", "vanilla", {"a": 0.0})


def test_scenario_truths(race):
    s = race.SCENARIOS
    assert set(s) >= {"null", "clearly-better", "one-worse", "observed-sst2", "small-margin"}
    for scenario in s.values():
        assert scenario.configs[0].name == "vanilla" and scenario.configs[0].group == "vanilla"

    def truth(name):
        sc = s[name]
        return race.right_outcome(sc.deltas(), race.Options().settings().margin_for(sc.metric))

    assert truth("null") == ("equivalent", frozenset())
    assert truth("clearly-better") == ("better", {"sda-k2"})
    assert truth("small-margin") == ("better", {"sda-k2"})
    assert truth("one-worse")[0] == "equivalent"
    assert truth("observed-sst2")[0] == "equivalent"
    assert s["observed-sst2"].deltas()["sda-kall"] == pytest.approx(0.0023)
    if "observed-cola" in s:
        assert s["observed-cola"].metric == "mcc" and s["observed-cola"].collapse == 0.0


def test_draws_share_the_seed_and_collapse(race):
    sc = race.SCENARIOS["null"]
    rng = np.random.default_rng(1)
    # rho 1: every configuration moves with its seed only (equal stds: equal scores)
    scores, failed = race.draw(sc, rng, race.Options(rho=1.0, fail_rate=0.0, maximum=50))
    assert scores.shape == (len(sc.configs), 50) and not failed.any()
    assert np.allclose(scores, scores[0])
    # rho 0.5: the correlation between two configurations on a seed is about 0.5
    scores, _ = race.draw(sc, rng, race.Options(rho=0.5, fail_rate=0.0, maximum=20_000))
    assert np.corrcoef(scores[0], scores[1])[0, 1] == pytest.approx(0.5, abs=0.03)
    assert scores.std(axis=1) == pytest.approx([0.010] * len(sc.configs), rel=0.05)
    # a failed run scores the majority class
    scores, failed = race.draw(sc, rng, race.Options(fail_rate=0.3, maximum=2000))
    assert failed.mean() == pytest.approx(0.3, abs=0.02)
    assert np.all(scores[failed] == 0.5) and np.all(scores[~failed] > 0.7)


def test_sweep_trial_accounting(race):
    opts = race.Options(**SMALL)
    looks = race.schedule(opts.start, opts.step, opts.maximum)
    for name in ("clearly-better", "one-worse"):
        sc = race.SCENARIOS[name]
        rows = [race.simulate(sc, rep, opts) for rep in range(4)]
        for r in rows:
            assert r["grid_trials"] == len(sc.configs) * opts.maximum
            assert set(r["seeds"]) == {c.name for c in sc.configs}
            assert all(n in looks for n in r["seeds"].values())
            assert r["race_trials"] == sum(r["seeds"].values()) <= r["grid_trials"]
            assert r["seeds"]["vanilla"] == r["last_n"] == max(r["seeds"].values())
            # eliminated at or before the look that ended the race, never at the last one
            assert all(r["seeds"][c] <= r["last_n"] for c in r["eliminated"])
            assert all(r["seeds"][c] < opts.maximum for c in r["eliminated"])
            assert "vanilla" not in r["eliminated"]
        # a clearly worse configuration is dropped early, so the race saves trials
        assert any(r["race_trials"] < r["grid_trials"] for r in rows)
    # reproducible per (seed, scenario, repetition), different across repetitions
    sc = race.SCENARIOS["null"]
    assert race.simulate(sc, 3, opts) == race.simulate(sc, 3, opts)
    a, b = race.draw(sc, race._rng(opts, sc, 0), opts), race.draw(sc, race._rng(opts, sc, 1), opts)
    assert not np.allclose(a[0], b[0])


def test_candidates_carry_what_the_rule_needs(race):
    sc = race.SCENARIOS["clearly-better"]
    opts = race.Options(**SMALL)
    scores, failed = race.draw(sc, np.random.default_rng(0), opts)
    failed[1, 2] = True
    cands = race.candidates_from(sc, scores, failed)({"vanilla": [0, 1], "noisytune": [0, 1, 2]})
    van, nt = cands
    assert van.is_vanilla and not nt.is_vanilla and van.cost < nt.cost
    assert van.id == "vanilla:student" and nt.group == "noisytune"
    assert dict(nt.values) == {s: scores[1, s] for s in (0, 1, 2)}
    assert dict(nt.flags) == {2: "one class"}


def _record(name, **kw):
    base = {
        "scenario": name,
        "right_verdict": "equivalent" if name == "null" else "better",
        "trials_ratio": 0.8,
        "max_sweep_trials_ratio": 1.0,
        "power_loss": 0.0,
        "power_loss_se": 0.01,
        "right_rate_grid": 0.9,
        "right_rate_race": 0.9,
        "false_better_grid": 0.0,
        "false_better_race": 0.0,
    }
    return {**base, **kw}


def test_summary_targets(race):
    good = race.summary(
        [
            _record("null", false_better_race=0.04, false_better_grid=0.03),
            _record("clearly-better", trials_ratio=0.4, power_loss=0.01),
            _record("small-margin", power_loss=0.02),
        ]
    )
    assert all(good["targets"].values())
    assert good["power_loss"] == 0.02 and good["power_loss_scenario"] == "small-margin"
    assert good["trials_ratio"] == pytest.approx((0.8 + 0.4 + 0.8) / 3)
    bad = race.summary(
        [
            _record("null", false_better_race=0.06),
            _record("clearly-better", trials_ratio=0.6, max_sweep_trials_ratio=1.1),
            _record("small-margin", power_loss=0.05),
        ]
    )
    assert bad["targets"] == {
        "false_better_rate<=0.05": False,
        "false_better_rate_grid<=0.05": True,
        "false_better_rate_every_scenario<=0.05": False,
        "false_better_rate_grid_every_scenario<=0.05": True,
        "power_loss<=0.03": False,
        "race_never_more_trials_than_grid": False,
        "clearly_better_trials_ratio<=0.5": False,
    }
    # a target whose scenario did not run is not claimed met
    assert race.summary([_record("small-margin")])["targets"]["false_better_rate<=0.05"] is None


def test_command_prints_json_lines(race, capsys, monkeypatch):
    monkeypatch.setattr(race, "machine", lambda: {"cpu": "test"})  # no torch import here
    argv = ["--reps", "3", "--jobs", "1", "--max", "7", "--scenario", "null"]
    out = race.main([*argv, "--scenario", "clearly-better"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x.get("scenario") for x in lines[:-1]] == ["null", "clearly-better"]
    for rec in lines[:-1]:
        for key in ("reps", "grid_trials", "race_trials", "trials_ratio", "right_rate_grid",
                    "right_rate_race", "false_better_grid", "false_better_race",
                    "verdicts_grid", "verdicts_race", "race_seeds_per_config",
                    "race_at_max_rate"):  # fmt: skip
            assert key in rec, key
        assert rec["reps"] == 3 and rec["grid_trials"] == 5 * 7
        assert rec["race_trials"] <= rec["grid_trials"]
        assert math.isclose(sum(rec["verdicts_race"].values()), 1.0)
    summary = lines[-1]
    assert summary == json.loads(json.dumps(out))
    for key in ("false_better_rate", "false_better_rate_grid", "power_loss",
                "trials_ratio_by_scenario", "trials_ratio", "targets"):  # fmt: skip
        assert key in summary, key
    assert set(summary["trials_ratio_by_scenario"]) == {"null", "clearly-better"}
    assert len(summary["targets"]) == 7
    assert all(v is None or isinstance(v, bool) for v in summary["targets"].values())


def test_the_adversarial_scenarios_draw_what_they_say(race):
    opts = race.Options(maximum=15, fail_rate=0.01)
    ties = race.SCENARIOS["ties"]
    scores, _ = race.draw(ties, np.random.default_rng(0), opts)
    steps = scores * 277
    assert np.allclose(steps, np.round(steps)) and ties.start == 2  # RTE's grid, from 2 seeds
    tail = race.SCENARIOS["hidden-tail"]
    failed = np.mean([race.draw(tail, np.random.default_rng(s), opts)[1] for s in range(400)],
                     axis=(0, 2))  # fmt: skip
    assert failed[1] == pytest.approx(1 / 8, abs=0.015) and failed[2:].max() < 0.03
    # c1's true Δ counts its collapses: 7/8 · 0.815 + 1/8 · 0.5 against 0.99 · 0.8 + 0.01 · 0.5
    assert tail.deltas(0.01)["c1"] == pytest.approx(0.775625 - 0.797)
    assert tail.deltas(0.01)["c2"] == 0.0
    flat = race.SCENARIOS["uncorrelated"]
    draws = np.stack([race.draw(flat, np.random.default_rng(s), race.Options(fail_rate=0))[0]
                      for s in range(300)])  # fmt: skip
    assert abs(np.corrcoef(draws[:, 0].ravel(), draws[:, 1].ravel())[0, 1]) < 0.05
    near = race.SCENARIOS["many-near-equal"]
    assert len(near.configs) == 10 and max(map(abs, near.deltas().values())) <= 0.005 + 1e-12


def test_a_budget_bounds_every_simulated_race(race):
    opts = race.Options(maximum=15, budget_trials=40)
    sc = race.SCENARIOS["null"]
    rows = [race.simulate(sc, rep, opts) for rep in range(5)]
    assert all(r["race_trials"] <= 40 for r in rows)
    assert any(r["last_n"] < 15 for r in rows)  # the budget, not max, ended them
