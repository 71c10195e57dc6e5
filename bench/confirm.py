"""How often the test-split check "confirms" a configuration that is no better, on seeds
whose dev and test scores correlate: the same seeds' models against fresh seeds.

The report's check re-scores the *same seeds' models* that won on dev. A seed that was
lucky on dev (a good head initialisation, a good data order) is usually lucky on test
too: per seed, dev and test scores of one configuration correlate at 0.62 (SST-2, the
companions study), 0.91 (STS-B) and 0.94 (CoNLL-2003) in this project's runs
(docs/results-companions.md, docs/results-tasks.md). So a configuration chosen on dev
for its lucky seeds is "confirmed" on test more often than α/2. Fresh seeds — new runs
of the chosen configuration and of vanilla, trained after the choice — share no luck
with the selection, so their false "confirmed" rate is α/2 whatever the correlation.

The draws: five configurations of equal true mean 0.80 and seed std 0.010, correlated on
a seed across configurations (ρ = 0.5, as in ``bench/race.py``); a run's test score is
``0.80 + σ·(ρ_dt·L + √(1 − ρ_dt²)·e)`` for its dev latent ``L``. Each sweep decides on
dev with the project's own rule (``analysis._decide.decide``, all seeds, α = 0.05); when
it says ``better`` (falsely: nothing is), the chosen configuration is checked on test by
``analysis._select.confirmation_of`` twice: on its own seeds, and on ``--fresh`` new
seeds of it and of vanilla. One JSON line per ρ_dt.

    .venv/bin/python bench/confirm.py --sweeps 20000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine

from analysis._decide import Candidate, decide
from analysis._select import CONFIRMED, confirmation_of

NAMES = ("vanilla", "noisytune", "sda-k1", "sda-k2", "sdv-k3")
MEAN, SD, RHO, ALPHA = 0.80, 0.010, 0.5, 0.05


def _latent(rng: np.random.Generator, configs: int, seeds: int) -> np.ndarray:
    shared = rng.standard_normal(seeds)[None, :]
    return math.sqrt(RHO) * shared + math.sqrt(1 - RHO) * rng.standard_normal((configs, seeds))


def _test(rng: np.random.Generator, latent: np.ndarray, rho_dt: float) -> np.ndarray:
    noise = rng.standard_normal(latent.shape)
    return MEAN + SD * (rho_dt * latent + math.sqrt(1 - rho_dt**2) * noise)


def one_sweep(rng: np.random.Generator, seeds: int, fresh: int, rho_dt: float):
    """(false better?, same-seed outcome, fresh-seed outcome) of one null sweep."""
    latent = _latent(rng, len(NAMES), seeds)
    dev = MEAN + SD * latent
    cands = [Candidate(f"{n}:student", n, n, dict(enumerate(dev[i])), (i,), is_vanilla=i == 0)
             for i, n in enumerate(NAMES)]  # fmt: skip
    d = decide(cands, metric="accuracy", power=False)
    if d.verdict != "better":
        return False, None, None
    chosen = NAMES.index(d.chosen.split(":")[0])
    test = _test(rng, latent, rho_dt)
    same = confirmation_of(list(test[chosen] - test[0]), 1 - ALPHA)["outcome"]
    new = _test(rng, _latent(rng, len(NAMES), fresh), rho_dt)
    fresh_outcome = confirmation_of(list(new[chosen] - new[0]), 1 - ALPHA)["outcome"]
    return True, same, fresh_outcome


def run(rho_dt: float, sweeps: int, seeds: int, fresh: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, int(rho_dt * 1000)])
    better = same = new = 0
    for _ in range(sweeps):
        b, s, f = one_sweep(rng, seeds, fresh, rho_dt)
        better += b
        same += s == CONFIRMED
        new += f == CONFIRMED
    return {
        "bench": "confirm", "rho_dev_test": rho_dt, "sweeps": sweeps, "seeds": seeds,
        "fresh_seeds": fresh, "false_better": better / sweeps,
        "confirmed_same_seeds_given_false_better": same / better if better else None,
        "confirmed_fresh_seeds_given_false_better": new / better if better else None,
        "false_confirmed_same_seeds": same / sweeps, "false_confirmed_fresh_seeds": new / sweeps,
        # the target, tested: is the fresh-seed rate shown above α/2? (exact binomial)
        "fresh_shown_above_alpha/2_p": (
            float(binomtest(new, better, ALPHA / 2, alternative="greater").pvalue)
            if better else None
        ),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweeps", type=int, default=20000, help="null sweeps per correlation")
    p.add_argument("--seeds", type=int, default=15, help="seeds per configuration")
    p.add_argument("--fresh", type=int, default=10, help="fresh seeds of each side")
    p.add_argument("--rho-dev-test", type=float, action="append", dest="rhos",
                   help="repeatable; default 0, 0.62, 0.94")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.sweeps < 1 or args.seeds < 2 or args.fresh < 2:
        p.error("need --sweeps >= 1, --seeds >= 2 and --fresh >= 2")
    rhos = args.rhos or [0.0, 0.62, 0.94]
    if not all(0 <= r < 1 for r in rhos):
        p.error("--rho-dev-test is a correlation in [0, 1)")
    for rho in rhos:
        t0 = time.perf_counter()
        out = run(rho, args.sweeps, args.seeds, args.fresh, args.seed)
        emit({**out, "wall_s": round(time.perf_counter() - t0, 1), "machine": machine()})


if __name__ == "__main__":
    main()
