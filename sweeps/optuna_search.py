"""Optuna λ search where each candidate is trained with several seeds.

Design (see docs/sweeps.md): one Optuna study per cell (dataset, strategy, K, other λ),
all in one storage. A candidate λ is asked from the cell's study and becomes
``seeds_per_candidate`` ordinary Tune trials, one per seed, which run in parallel, checkpoint
and retry like grid trials and each land as a row in ``results.parquet``. When the last seed
of a candidate finishes, the study is told the mean of their objectives (or FAIL if any seed
failed). Ray's own ``OptunaSearch`` tells one value per Tune trial and cannot average over
seeds, hence this small searcher; ``sweeps._ray.SeedGroupSearcher`` adapts it to Tune.

This module is Ray-free: its state is plain data, saved by Tune with the experiment.
"""

from __future__ import annotations

import statistics
from typing import Any

from sweeps.grid import build_trial, search_cells
from sweeps.spec import SweepSpec

FINISHED = object()


def default_storage_url(run_dir: str) -> str:
    if "://" in run_dir:
        raise ValueError("give search.storage for a remote run directory")
    return f"sqlite:///{run_dir}/optuna.db"


class SeedGroupSearch:
    """Ask candidates, fan each out to seeds, tell the seed mean. Plain-data state."""

    def __init__(self, spec: SweepSpec, storage_url: str) -> None:
        assert spec.search is not None
        self.spec = spec
        self.storage_url = storage_url
        self.cells = search_cells(spec)
        self.seeds = spec.candidate_seeds
        # state (JSON-able)
        self.candidates: list[dict[str, Any]] = []  # {cell, number, value, pending, done}
        self.trial_ids: dict[str, list[int]] = {}  # Tune trial id -> [candidate idx, seed]
        self._studies: dict[str, Any] = {}

    # -- Optuna ---------------------------------------------------------------------
    def study_name(self, cell_key: str) -> str:
        return f"{self.spec.name}/{cell_key}"

    def study(self, cell_key: str):
        import optuna

        if cell_key not in self._studies:
            s = self.spec.search
            assert s is not None
            kind = (
                optuna.samplers.TPESampler if s.sampler == "tpe" else optuna.samplers.RandomSampler
            )
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.create_study(
                storage=self.storage_url,
                study_name=self.study_name(cell_key),
                direction="maximize",
                sampler=kind(seed=s.sampler_seed),
                load_if_exists=True,
            )
            asked = len(study.get_trials(deepcopy=False))
            if asked:
                # A seeded sampler restarts its random stream in a new process: without an
                # offset a resumed search would propose the very same λ values again.
                study.sampler = kind(seed=s.sampler_seed + asked)
            self._studies[cell_key] = study
            self._fail_orphans(cell_key)
        return self._studies[cell_key]

    def _fail_orphans(self, cell_key: str) -> None:
        """Candidates asked by a driver that died before Tune saved them: mark them failed."""
        import optuna

        known = {c["number"] for c in self.candidates if c["cell"] == cell_key}
        study = self._studies[cell_key]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if t.number not in known:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def _ask(self, cell: dict[str, Any]) -> dict[str, Any]:
        s = self.spec.search
        assert s is not None
        trial = self.study(cell["key"]).ask()
        value = trial.suggest_float(s.param, s.low, s.high, log=s.log)
        candidate = {
            "cell": cell["key"],
            "number": trial.number,
            "value": value,
            "emitted": 0,
            "results": {},  # seed -> objective or None (failed)
            "told": False,
        }
        self.candidates.append(candidate)
        return candidate

    # -- the searcher protocol ------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | object | None:
        """The next Tune trial (``{"trial": TrialSpec dict}``), or ``FINISHED``."""
        for idx, cand in enumerate(self.candidates):
            if cand["emitted"] < len(self.seeds):
                return self._emit(trial_id, idx)
        for cell in self.cells:
            asked = sum(1 for c in self.candidates if c["cell"] == cell["key"])
            if asked < self.spec.search.n_trials:  # type: ignore[union-attr]
                self._ask(cell)
                return self._emit(trial_id, len(self.candidates) - 1)
        return FINISHED

    def _emit(self, trial_id: str, idx: int) -> dict[str, Any]:
        cand = self.candidates[idx]
        seed = self.seeds[cand["emitted"]]
        cand["emitted"] += 1
        self.trial_ids[trial_id] = [idx, seed]
        cell = next(c for c in self.cells if c["key"] == cand["cell"])
        knobs = {
            "k": cell["k"],
            "distill_lambda": cell["distill_lambda"],
            "noise_lambda": cell["noise_lambda"],
        }
        knobs[
            "distill_lambda" if self.spec.search.param == "distill.lambda" else "noise_lambda"
        ] = (  # type: ignore[union-attr]
            cand["value"]
        )
        trial = build_trial(
            self.spec,
            cell["dataset_index"],
            cell["strategy"],
            seed,
            group=cand["cell"],
            optuna_trial=cand["number"],
            **knobs,
        )
        return {"trial": trial.to_dict()}

    def complete(self, trial_id: str, value: float | None, error: bool) -> None:
        if trial_id not in self.trial_ids:
            return
        idx, seed = self.trial_ids[trial_id]
        cand = self.candidates[idx]
        cand["results"][str(seed)] = None if error else value
        if len(cand["results"]) == len(self.seeds) and not cand["told"]:
            self._tell(cand)

    def _tell(self, cand: dict[str, Any]) -> None:
        import optuna

        values = list(cand["results"].values())
        study = self.study(cand["cell"])
        cand["told"] = True
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == cand["number"])
        if frozen.state.is_finished():
            return  # told before the driver died, after Tune last saved this state
        if any(v is None for v in values):
            study.tell(cand["number"], state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(cand["number"], statistics.fmean(values))

    # -- state ----------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "trial_ids": self.trial_ids}

    def set_state(self, state: dict[str, Any]) -> None:
        self.candidates = state["candidates"]
        self.trial_ids = state["trial_ids"]
        self._studies = {}
        # a candidate whose seeds all finished but whose tell was lost: tell it now
        for cand in self.candidates:
            if len(cand["results"]) == len(self.seeds) and not cand["told"]:
                self._tell(cand)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_studies"] = {}  # storage connections do not pickle
        return state

    @property
    def total_trials(self) -> int:
        return len(self.cells) * self.spec.search.n_trials * len(self.seeds)  # type: ignore[union-attr]
