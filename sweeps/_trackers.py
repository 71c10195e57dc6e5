"""The spec's ``callbacks:`` as Ray Tune's own logger callbacks (pinned: ray==2.60.0).

A Ray user plugs MLflow, Weights & Biases or TensorBoard into a Tuner with
``MLflowLoggerCallback``, ``WandbLoggerCallback`` and ``TBXLoggerCallback``; steadytune
uses exactly those, adjusted where Tune's defaults do not fit a sweep over seeds:

* a run is named by its trial key (``sst2_sda_k5_s1``), not Tune's ``run_trial_<id>``,
  and grouped by its configuration (the key without the seed);
* its params are the trial's knob values (dataset, strategy, seed, K, λ, swept
  settings, model), not the whole nested trial config;
* a metric's step is the optimizer step of the evaluation that produced it;
* TensorBoard's events go once per trial into ``<run dir>/trials/<key>/tensorboard``
  (``tensorboard --logdir <run dir>``); Tune's automatic TensorBoard logger is off, as it
  wrote a second copy into Ray's session directory.

Like ``sweeps._ray``, this module follows Ray's API in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL

from sweeps.grid import TrialSpec, config_key
from sweeps.rundir import is_remote
from sweeps.spec import CallbacksSpec
from trainer.layout import MLFLOW_DB, TENSORBOARD_DIR, trial_dir

__all__ = ["logger_callbacks", "trial_params"]


def _spec_of(trial) -> TrialSpec:
    return TrialSpec.from_dict(trial.config["trial"])


def trial_params(spec: TrialSpec) -> dict[str, Any]:
    """What a tracker records as a run's parameters: the knobs that tell its configuration
    and seed apart (None where the strategy has no such knob)."""
    params: dict[str, Any] = {
        "dataset": spec.dataset,
        "strategy": spec.strategy,
        "seed": spec.seed,
        "model": spec.config.get("model"),
        "config_key": config_key(spec),
        **spec.settings,
    }
    return {k: v for k, v in params.items() if v is not None}


class _StepOfEvaluation:
    """A result's step for the trackers: the optimizer step it reports (``step``), else
    the last one seen (the final report repeats the last evaluation's metrics)."""

    def _with_step(self, trial, result: dict[str, Any]) -> dict[str, Any]:
        # kept on the instance without an __init__ of its own: the Tune classes it is mixed
        # into each take other arguments
        steps = vars(self).setdefault("_last_steps", {})
        step = result.get("step", steps.get(trial.trial_id, 0))
        steps[trial.trial_id] = step
        return {**result, TIMESTEPS_TOTAL: step}


class SweepMLflow(_StepOfEvaluation, MLflowLoggerCallback):
    """``MLflowLoggerCallback`` with runs named by trial key and knob-value params."""

    def log_trial_start(self, trial) -> None:
        if trial not in self._trial_runs:
            spec = _spec_of(trial)
            tags = {**self.tags, "trial_key": spec.key, "config_key": config_key(spec)}
            run = self.mlflow_util.start_run(tags=tags, run_name=spec.key)
            self._trial_runs[trial] = run.info.run_id
            self.mlflow_util.log_params(
                run_id=self._trial_runs[trial], params_to_log=trial_params(spec)
            )

    def log_trial_result(self, iteration: int, trial, result: dict[str, Any]) -> None:
        super().log_trial_result(iteration, trial, self._with_step(trial, result))

    def log_trial_end(self, trial, failed: bool = False) -> None:
        # the params went in at the start; Tune's end would log its whole config again
        run_id = self._trial_runs[trial]
        self.mlflow_util.end_run(run_id=run_id, status="FAILED" if failed else "FINISHED")


class SweepWandb(_StepOfEvaluation, WandbLoggerCallback):
    """``WandbLoggerCallback`` with runs named by trial key, grouped by configuration."""

    def _start_logging_actor(self, trial, exclude_results, **init_kwargs) -> None:
        spec = _spec_of(trial)
        init_kwargs.update(name=spec.key, group=config_key(spec), config=trial_params(spec))
        super()._start_logging_actor(trial, exclude_results, **init_kwargs)

    def log_trial_result(self, iteration: int, trial, result: dict[str, Any]) -> None:
        super().log_trial_result(iteration, trial, self._with_step(trial, result))


class SweepTensorBoard(_StepOfEvaluation, TBXLoggerCallback):
    """``TBXLoggerCallback`` writing each trial's events into its own trial directory
    (local and shared run dirs; a remote one keeps Tune's trial directory, uploaded)."""

    def __init__(self, run_dir: str) -> None:
        super().__init__()
        self.run_dir = run_dir

    def log_trial_start(self, trial) -> None:
        if is_remote(self.run_dir):
            super().log_trial_start(trial)
            return
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        logdir = Path(trial_dir(self.run_dir, _spec_of(trial).key)) / TENSORBOARD_DIR
        self._trial_writer[trial] = self._summary_writer_cls(str(logdir), flush_secs=30)
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration: int, trial, result: dict[str, Any]) -> None:
        super().log_trial_result(iteration, trial, self._with_step(trial, result))


def logger_callbacks(callbacks: CallbacksSpec, run_dir: str, sweep: str) -> list:
    """The Tune logger callbacks of sweep ``sweep``: Tune's CSV and JSON loggers (which
    ``ray.tune.ExperimentAnalysis`` reads) and each tracker the spec's ``callbacks:``
    names. MLflow's store defaults to ``sqlite:///<run dir>/mlflow.db`` (MLflow 3 keeps its
    file store in maintenance and refuses it by default), experiment and project to the
    sweep's name. Tune's automatic loggers are turned off, so TensorBoard writes only
    when asked, and once."""
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    out: list = [CSVLoggerCallback(), JsonLoggerCallback()]
    if callbacks.mlflow is not None:
        uri = callbacks.mlflow.tracking_uri or f"sqlite:///{Path(run_dir, MLFLOW_DB).absolute()}"
        name = callbacks.mlflow.experiment or sweep
        out.append(SweepMLflow(tracking_uri=uri, experiment_name=name))
    if callbacks.wandb is not None:
        extra = {"mode": callbacks.wandb.mode} if callbacks.wandb.mode else {}
        out.append(SweepWandb(project=callbacks.wandb.project or sweep, **extra))
    if callbacks.tensorboard:
        out.append(SweepTensorBoard(run_dir))
    return out
