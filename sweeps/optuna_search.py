"""Optuna λ search where each candidate is trained with several seeds.

Design (see docs/sweeps.md): one Optuna study per cell (dataset, strategy, K, other λ),
all in one storage. A candidate λ is asked from the cell's study and becomes
``seeds_per_candidate`` ordinary Tune trials, one per seed, which run in parallel, checkpoint
and retry like grid trials and each land as a row in ``results.parquet``. When the last seed
of a candidate finishes, the study is told the mean of their objectives (or FAIL if any seed
failed). Before the tell, the candidate's Optuna trial gets user attrs with each seed's
objective (``seed_values``, ``mean``, ``std``, ``n``, ``metric``, ``trial_keys``) and the study
its metric name (``dev/<primary metric>``), so that optuna-dashboard shows the seeds behind each
mean (not just "Objective 0") and links them to their Tune trials. Ray's own
``OptunaSearch`` tells one value per Tune trial and cannot average over seeds, hence this
small searcher; ``sweeps._ray.SeedGroupSearcher`` adapts it to Tune.

This module is Ray-free: its state is plain data. A local run dir is resumed without
Tune's saved state (``resume_from``): the studies say which candidates were asked and
told, the trial directories which seeds of each finished.
"""

from __future__ import annotations

import statistics
import warnings
from typing import Any

from sweeps.grid import SweepPlan, TrialSpec, build_trial
from sweeps.results import finished_result
from trainer.layout import OPTUNA_DB, trial_dir

FINISHED = object()


def default_storage_url(run_dir: str) -> str:
    if "://" in run_dir:
        raise ValueError("give search.storage for a remote run directory")
    return f"sqlite:///{run_dir}/{OPTUNA_DB}"


class SeedGroupSearch:
    """Ask candidates, fan each out to seeds, tell the seed mean. Plain-data state."""

    def __init__(self, plan: SweepPlan, storage_url: str) -> None:
        assert plan.spec.search is not None
        self.spec = plan.spec
        self.storage_url = storage_url
        self.cells = plan.cells
        self.seeds = plan.spec.candidate_seeds
        # state (JSON-able)
        self.candidates: list[dict[str, Any]] = []  # {cell, number, value, pending, done}
        self.trial_ids: dict[str, list[int]] = {}  # Tune trial id -> [candidate idx, seed]
        self._studies: dict[str, Any] = {}

    # -- Optuna ---------------------------------------------------------------------
    def study_name(self, cell_key: str) -> str:
        return f"{self.spec.name}/{cell_key}"

    def study(self, cell_key: str, fail_orphans: bool = True):
        """The cell's study (created or loaded). ``fail_orphans``: mark FAIL the
        candidates a dead driver asked that this searcher's (Tune-restored) state does not
        know; ``resume_from`` adopts them instead."""
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
            self._set_metric_name(cell_key, study)
            if fail_orphans:
                self._fail_orphans(cell_key)
        return self._studies[cell_key]

    def _set_metric_name(self, cell_key: str, study) -> None:
        """Name the objective (``dev/<primary metric>``) so dashboards do not show it as
        "Objective 0"; a no-op when the study already has that name."""
        import optuna

        metric = self.spec.datasets[self._cell(cell_key)["dataset_index"]].primary_metric
        names = [f"dev/{metric}"]
        if study.metric_names != names:
            with warnings.catch_warnings():  # set_metric_names is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)

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
        if s.is_int:
            value = trial.suggest_int(s.param, int(s.low), int(s.high), log=s.log)
        else:
            value = trial.suggest_float(s.param, s.low, s.high, log=s.log)
        candidate = {
            "cell": cell["key"],
            "number": trial.number,
            "value": value,
            "to_emit": list(self.seeds),  # seeds not yet handed to Tune
            "results": {},  # seed -> objective or None (failed)
            "told": False,
        }
        self.candidates.append(candidate)
        return candidate

    # -- the searcher protocol ------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | object | None:
        """The next Tune trial (``{"trial": TrialSpec dict}``), or ``FINISHED``."""
        for idx, cand in enumerate(self.candidates):
            if cand["to_emit"]:
                return self._emit(trial_id, idx)
        for cell in self.cells:
            if self._asked(cell["key"]) < self.spec.search.n_trials:  # type: ignore[union-attr]
                self._ask(cell)
                return self._emit(trial_id, len(self.candidates) - 1)
        return FINISHED

    def _asked(self, cell_key: str) -> int:
        """Candidates of a cell that got a value. One asked by a driver killed before its
        value was stored (between Optuna's ``ask`` and ``suggest_*``, while the sampler
        reads the history) is failed on resume and does not count: the search still gets
        its ``n_trials`` candidates."""
        return sum(1 for c in self.candidates if c["cell"] == cell_key and c["value"] is not None)

    def _emit(self, trial_id: str, idx: int) -> dict[str, Any]:
        cand = self.candidates[idx]
        seed = cand["to_emit"].pop(0)
        self.trial_ids[trial_id] = [idx, seed]
        return {"trial": self.candidate_trial(cand, seed).to_dict()}

    def _cell(self, cell_key: str) -> dict[str, Any]:
        return next(c for c in self.cells if c["key"] == cell_key)

    def candidate_trial(self, cand: dict[str, Any], seed: int) -> TrialSpec:
        """The Tune trial of one seed of a candidate: its cell's knobs plus the λ asked."""
        cell = self._cell(cand["cell"])
        param = self.spec.search.param  # type: ignore[union-attr]
        return build_trial(
            self.spec,
            cell["dataset_index"],
            cell["strategy"],
            seed,
            settings={**cell["settings"], param: cand["value"]},
            group=cand["cell"],
            optuna_trial=cand["number"],
        )

    def complete(self, trial_id: str, value: float | None, error: bool) -> None:
        if trial_id not in self.trial_ids:
            return
        idx, seed = self.trial_ids[trial_id]
        cand = self.candidates[idx]
        cand["results"][str(seed)] = None if error else value
        if len(cand["results"]) == len(self.seeds) and not cand["told"]:
            self._tell(cand)

    def _tell(self, cand: dict[str, Any]) -> None:
        """Tell the study the seed mean (FAIL if a seed failed). The per-seed objectives
        go on the Optuna trial as user attrs first, so optuna-dashboard shows the seeds
        behind each mean and the Tune trials (``trial_keys``) they came from."""
        import optuna

        values = list(cand["results"].values())
        study = self.study(cand["cell"])
        cand["told"] = True
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == cand["number"])
        if frozen.state.is_finished():
            return  # told before the driver died, after Tune last saved this state
        # On the stored trial directly (a resumed driver holds no Trial object, and
        # building one runs the sampler's per-trial hooks); only while it is RUNNING.
        for key, value in self._seed_attrs(cand).items():
            study._storage.set_trial_user_attr(frozen._trial_id, key, value)
        if any(v is None for v in values):
            study.tell(cand["number"], state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(cand["number"], statistics.fmean(values))

    def _seed_attrs(self, cand: dict[str, Any]) -> dict[str, Any]:
        """The user attrs of a candidate's Optuna trial (JSON-able, as Optuna requires)."""
        results = {str(seed): cand["results"].get(str(seed)) for seed in self.seeds}
        seed_values = {seed: None if v is None else float(v) for seed, v in results.items()}
        finished = [v for v in seed_values.values() if v is not None]
        trials = [self.candidate_trial(cand, seed) for seed in self.seeds]
        return {
            "seed_values": seed_values,
            "mean": statistics.fmean(finished) if finished else None,
            "std": statistics.stdev(finished) if len(finished) >= 2 else None,
            "n": len(finished),
            "metric": f"dev/{trials[0].primary_metric}",
            "trial_keys": [t.key for t in trials],
        }

    # -- state ----------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "trial_ids": self.trial_ids}

    def set_state(self, state: dict[str, Any]) -> None:
        """Tune's saved state (remote run dirs, ``Tuner.restore``)."""
        self.candidates = state["candidates"]
        self.trial_ids = state["trial_ids"]
        self._studies = {}
        # a candidate whose seeds all finished but whose tell was lost: tell it now
        for cand in self.candidates:
            if len(cand["results"]) == len(self.seeds) and not cand["told"]:
                self._tell(cand)

    def resume_from(self, run_dir: str) -> None:
        """Rebuild the state of an earlier driver from the studies and the trial dirs.

        Every candidate a study holds is known again: told ones (COMPLETE or FAIL) are
        done; for one still RUNNING, the seeds with a result of their own config count as
        finished and the others are emitted again (they resume from their checkpoints),
        and a candidate whose seeds have all finished is told now. Nothing is asked twice.
        """
        import optuna

        assert self.spec.search is not None
        param = self.spec.search.param
        self.candidates, self.trial_ids = [], {}
        for cell in self.cells:
            study = self.study(cell["key"], fail_orphans=False)
            for frozen in study.get_trials(deepcopy=False):
                cand = {
                    "cell": cell["key"],
                    "number": frozen.number,
                    "value": frozen.params.get(param),
                    "to_emit": [],
                    "results": {},
                    "told": frozen.state.is_finished(),
                }
                self.candidates.append(cand)
                if cand["told"]:
                    continue
                if cand["value"] is None:  # asked, died before suggesting: nothing to run
                    study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
                    cand["told"] = True
                    continue
                for seed in self.seeds:
                    value = _finished_objective(run_dir, self.candidate_trial(cand, seed))
                    if value is None:
                        cand["to_emit"].append(seed)
                    else:
                        cand["results"][str(seed)] = value
                if not cand["to_emit"]:
                    self._tell(cand)

    @property
    def remaining_trials(self) -> int:
        """Tune trials still to run: unemitted seeds of known candidates, and every seed
        of the candidates not asked yet."""
        s = self.spec.search
        assert s is not None
        unasked = sum(max(0, s.n_trials - self._asked(cell["key"])) for cell in self.cells)
        return sum(len(c["to_emit"]) for c in self.candidates) + unasked * len(self.seeds)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_studies"] = {}  # storage connections do not pickle
        return state


def _finished_objective(run_dir: str, trial: TrialSpec) -> float | None:
    """The objective of a trial finished in ``run_dir`` with exactly this config, or None."""
    result = finished_result(trial_dir(run_dir, trial.key), trial.config)
    if result is None:
        return None
    value = (result.get("metrics") or {}).get("dev", {}).get(trial.primary_metric)
    return float(value) if isinstance(value, (int, float)) else None
