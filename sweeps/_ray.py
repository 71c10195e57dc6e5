"""Everything that touches Ray Tune lives here (pinned: ray==2.60.0).

Ray's reporting API has moved between releases; keeping the Tune-facing code in one
module means one place to follow it. Public pieces: ``init_ray``, ``run_trial`` (the
trainable), ``build_tuner`` / ``restore_tuner``, and the driver-side callbacks and
searcher adapter.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.search import Searcher

from sweeps import results as results_mod
from sweeps._trackers import logger_callbacks
from sweeps.optuna_search import FINISHED, SeedGroupSearch
from sweeps.rundir import is_remote
from sweeps.spec import CallbacksSpec
from sweeps.trial import place_checkpoint, run_trial_body
from trainer.layout import (
    ERROR_FILE,
    LOGITS_FILE,
    MODEL_FILE,
    REMOTE_OUT_DIR,
    RESULT_FILE,
    RESULTS_FILE,
    TRIAL_FILE,
    TRIAL_OUTPUTS,
    TUNE_DIR,
    TUNE_TRIAL_DIRNAME_MAX,
    trial_dir,
    trial_uri,
)

# AF_UNIX socket paths are limited to ~107 bytes; Ray puts sockets at
# <temp_dir>/session_<date>_<time>_<pid>/sockets/plasma_store (~70 chars after temp_dir).
_SOCKET_SUFFIX_LEN = 75
_UNIX_PATH_MAX = 107


def ray_temp_dir(run_dir: str) -> str:
    """Ray's temp dir for a local instance: ``<run dir>/ray/r`` when short enough.

    Ray ``chmod``s its temp dir to 0777 (again at every worker start), so it lives inside
    a private dir of ours, ``<run dir>/ray`` (0700): nobody else can reach Ray's logs,
    sockets or session files. Ray's session sockets live under the temp dir and Unix
    limits a socket path to ~107 bytes; when the path is too long (or the run dir is
    remote) the private dir is a fresh ``/tmp/st-ray-XXXXXXXX`` (0700) instead, its path
    recorded in ``<run dir>/ray-temp-dir.txt`` (``local_ray.instance_dir`` reads it).
    """
    from sweeps import local_ray

    if "://" not in run_dir:
        private = Path(run_dir) / local_ray.PRIVATE_DIR_NAME
        candidate = private / local_ray.RAY_TEMP_SUBDIR
        if len(str(candidate)) + _SOCKET_SUFFIX_LEN <= _UNIX_PATH_MAX:
            local_ray.make_private_dir(private)
            candidate.mkdir(exist_ok=True)
            return str(candidate)
    private = local_ray.make_private_tmp_dir()
    if "://" not in run_dir:
        Path(run_dir, local_ray.POINTER_FILE).write_text(f"{private}\n")
    candidate = private / local_ray.RAY_TEMP_SUBDIR
    candidate.mkdir()
    return str(candidate)


@contextlib.contextmanager
def _own_sigterm() -> Iterator[None]:
    """Keep the driver's SIGTERM handler across ``ray.init``: Ray's core worker installs
    a C-level one that aborts the process (exit −6, a stack dump) instead of letting the
    CLI unwind — release the run dir, shut Ray down — and exit 143."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def init_ray(
    run_dir: str,
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    dashboard: bool = True,
    verbose: bool = False,
) -> dict[str, Any]:
    """Connect to ``address`` (``auto``, ``host:port``, ``ray://…``) or start a local Ray.

    ``RAY_ADDRESS``, when set, counts as ``address``, as in Ray. An existing cluster keeps
    its own settings. A local instance can be reached by this user on this machine
    only (``sweeps/local_ray.py``; docs/sweeps.md, "Security"):

    * every listener Ray 2.60 opens (GCS, raylet, object manager, workers, dashboard,
      dashboard and runtime-env agents, metrics) is bound to 127.0.0.1: a true loopback
      node IP, checked here before anything runs. Metrics export is off;
    * token authentication, on by default in Ray 2.60 for a new local cluster, uses a
      ``~/.ray/auth_token`` created 0600; Ray's temp dir (logs, sockets) is inside an
      owner-only ``<run dir>/ray`` (or ``/tmp/st-ray-*``);
    * a watchdog process SIGKILLs the instance's processes if the driver dies without
      shutting Ray down (``remove_local_temp`` stops it after a normal shutdown).

    The trials' own output (their prints, warnings, progress bars, the SIGTERM a reused
    worker gets at shutdown) reaches the terminal only when ``verbose``; it is always in
    Ray's session logs (``<temp dir>/session_*/logs``, under the run dir for a local
    instance). Tune's own banner is off unless ``verbose``: the sweep prints its own view.

    Returns a short description.
    """
    from sweeps import local_ray

    # forced snapshots (checkpoint_config.num_to_keep) are what makes resume exact; the
    # warning about their frequency is noise for short trials
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ctrl-C ends the driver there and then (KeyboardInterrupt, exit 130: the CLI says
    # what is unfinished and how to resume). Tune's own handler would stop gracefully and
    # return as if the sweep had ended — a "done" line, a partial report, exit 0 — and
    # advise Tuner.restore, which a local run dir never needs: it resumes from its trial
    # directories (each trial from its own checkpoint).
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    if not verbose:  # Tune's legacy reporter at verbose=0 prints nothing; the new one does
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        # token auth is on by design here; Ray's notice advises turning it off
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
    if ray.is_initialized():
        return {"address": "already connected"}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "local":
        with _own_sigterm():
            ctx = ray.init(address=address, logging_level="WARNING", log_to_driver=verbose)
        return {"address": address, "dashboard": getattr(ctx, "dashboard_url", None)}
    temp = ray_temp_dir(run_dir)
    local_ray.prepare_auth_token()
    watchdog = local_ray.start_watchdog(temp)
    with local_ray.loopback_node_ip(), _own_sigterm():
        ctx = ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            logging_level="WARNING",
            log_to_driver=verbose,
            **local_ray.local_init_kwargs(temp),
        )
    node_ip = ctx.address_info["node_ip_address"]
    if not local_ray.is_loopback(node_ip):
        ray.shutdown()
        local_ray.discard_instance(temp)
        raise RuntimeError(
            f"the local Ray instance came up on {node_ip}, not on {local_ray.LOOPBACK}, so "
            "other machines could reach it; steadytune runs no local sweep like that "
            "(is Ray still the pinned 2.60.0?)"
        )
    return {"address": "local", "temp_dir": temp, "dashboard": ctx.dashboard_url,
            "watchdog_pid": watchdog}  # fmt: skip


def cluster_nodes() -> list[dict[str, Any]]:
    return ray.nodes()


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))


# -- the trainable ----------------------------------------------------------------
def trial_out_dir(run_dir: str, key: str) -> Path:
    """Where the trainer writes: ``<run dir>/trials/<key>`` (local or shared storage);
    for a remote run dir, the trial's local directory (uploaded at the end)."""
    if "://" in run_dir:
        return Path(tune.get_context().get_trial_dir()) / REMOTE_OUT_DIR
    return trial_dir(run_dir, key)


def _upload(out_dir: Path, run_dir: str, key: str, final: dict[str, Any]) -> None:
    import pyarrow.fs as pafs

    dest = trial_uri(run_dir, key)
    fs, inner = pafs.FileSystem.from_uri(dest)
    for name in TRIAL_OUTPUTS:
        if (out_dir / name).exists():
            pafs.copy_files(str(out_dir / name), f"{inner}/{name}", destination_filesystem=fs)
    for field, name in (("result_path", RESULT_FILE), ("logits_path", LOGITS_FILE)):
        final[field] = f"{dest}/{name}"
    if final.get("model_path"):
        final["model_path"] = f"{dest}/{MODEL_FILE}"


def run_trial(config: dict[str, Any], train_fn=None) -> None:
    """The Tune trainable: one trainer run, resumed from its last checkpoint if it has one.

    ``config`` is ``{"trial": TrialSpec dict, "run_dir": str}``. Where the checkpoint
    lives depends on the storage:

    * a local or shared run dir (NFS, a compose volume, a PVC): the trainer's own
      checkpoint in ``<run dir>/trials/<key>/checkpoint`` is the one truth. It is written
      atomically and is always the newest, so a retried or restored trial continues from
      it, on whichever node. Tune is *not* given checkpoints here: with
      ``num_to_keep=1`` a driver killed between a trial's checkpoint and the driver's
      next experiment snapshot would leave Tune pointing at a checkpoint already deleted,
      and the trial could never be restored.
    * a remote run dir (``s3://…``): the trial works in a local directory, and every
      trainer checkpoint is handed to Tune, which uploads it; a retry starts from Tune's.

    ``train_fn`` replaces ``trainer.train`` in tests.
    """
    trial, run_dir = config["trial"], config["run_dir"]
    remote = is_remote(run_dir)
    out_dir = trial_out_dir(run_dir, trial["key"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if not remote:  # the trial directory describes itself: results.parquet is rebuilt from it
        started = {"trial": trial, "trial_id": tune.get_context().get_trial_id()}
        (out_dir / TRIAL_FILE).write_text(json.dumps(started, indent=1))
    if remote:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                place_checkpoint(Path(directory), out_dir)
        else:
            place_checkpoint(None, out_dir)

    objective = f"dev/{trial['primary_metric']}"

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        ckpt = None
        if remote and checkpoint_dir:
            ckpt = tune.Checkpoint.from_directory(str(checkpoint_dir))
        # every result carries the searcher's metric (Tune checks it strictly)
        tune.report({**metrics, "objective": metrics.get(objective)}, checkpoint=ckpt)

    final = run_trial_body(trial, out_dir, report, train_fn)
    if remote:
        _upload(out_dir, run_dir, trial["key"], final)
    tune.report(final)


# -- driver-side callbacks --------------------------------------------------------
class ResultsCallback(tune.Callback):
    """Keeps ``results.parquet`` up to date whenever a trial finishes or finally fails.

    Local and shared run dirs: the row is read from the trial's own directory (where a
    final failure is first recorded as ``error.json``), so the table can always be
    rebuilt from those files. Remote run dirs: the row is made from Tune's last result.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.results_path = f"{run_dir}/{RESULTS_FILE}"

    def _write(self, trial, status: str) -> None:
        """Record the trial's outcome; a failure to record it (a full disk, a trial dir
        made read-only, a vanished mount) is that trial's, never the sweep's: an
        exception here would end Tune and abandon every running trial. The trial then
        has no outcome on disk, so it counts as unfinished and ``resume`` runs it."""
        spec = trial.config.get("trial")
        if spec is None:
            return
        try:
            self._record(trial, spec, status)
        except OSError as exc:
            print(f"steadytune: could not record the outcome of trial {spec['key']} "
                  f"({type(exc).__name__}: {exc}): it counts as unfinished; `steadytune "
                  "resume` runs it again", file=sys.stderr, flush=True)  # fmt: skip

    def _record(self, trial, spec: dict, status: str) -> None:
        if is_remote(self.run_dir):
            row = results_mod.make_row(
                spec, dict(trial.last_result or {}), trial_id=trial.trial_id, status=status
            )
            results_mod.upsert_rows(self.results_path, [row])
            return
        if status == results_mod.FAILED:
            self._record_failure(trial, spec["key"])
        results_mod.record_trial(self.run_dir, spec["key"])

    def _record_failure(self, trial, key: str) -> None:
        error_file = getattr(trial, "error_file", None)
        message = ""
        if error_file and Path(error_file).is_file():
            lines = Path(error_file).read_text(errors="replace").strip().splitlines()
            message = lines[-1] if lines else ""
        failure = {"trial_id": trial.trial_id, "error": message, "error_file": error_file}
        path = trial_out_dir(self.run_dir, key) / ERROR_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(failure, indent=1))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trial, results_mod.FINISHED)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(trial, results_mod.FAILED)


class ProgressCallback(tune.Callback):
    """What the person running the sweep sees (``sweeps.live.Board``).

    Always one line per trial event (started, finished with its dev score, retrying,
    FAILED). On a terminal, below them, the live board: running trials with their step
    and last dev score, the finished configurations' mean ± std, elapsed and ETA. Not on
    a terminal, a plain summary line every ``every_s`` seconds instead.
    """

    def __init__(
        self, label: str, total: int | None = None, *, live: bool | None = None,
        every_s: float = 60.0,
    ) -> None:  # fmt: skip
        from sweeps.live import Board

        self.board = Board(label, total)
        self.live = sys.stdout.isatty() if live is None else live
        self.every_s = every_s
        self._display = None
        self._last_line = time.monotonic()

    def __getstate__(self) -> dict:
        """Pickled with the experiment by Tune: without the terminal display."""
        return {**self.__dict__, "_display": None}

    def setup(self, **info) -> None:
        if self.live and self._display is None:
            from rich.live import Live

            self._display = Live(self.board, refresh_per_second=1, transient=True)
            self._display.start()

    def _event(self, trial, what: str) -> None:
        key = _trial_key(trial)
        score = (trial.last_result or {}).get("objective")
        score_txt = f" ({score:.4f})" if isinstance(score, (int, float)) else ""
        line = f"{self.board.summary()} | {what} {key}{score_txt}"
        if self._display is not None:
            self._display.console.print(line, soft_wrap=True, highlight=False, markup=False)
        else:
            print(line, file=sys.stdout, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        spec = trial.config.get("trial") or {}
        self.board.start(_trial_key(trial), _config_of(spec))
        self._event(trial, "started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.board.result(_trial_key(trial), result.get("step"), result.get("objective"))

    def on_trial_complete(self, iteration, trials, trial, **info):
        spec = trial.config.get("trial") or {}
        self.board.finish(_trial_key(trial), _config_of(spec),
                          (trial.last_result or {}).get("objective"))  # fmt: skip
        self._event(trial, "finished")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.board.retry(_trial_key(trial))
        self._event(trial, "retrying")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.board.fail(_trial_key(trial))
        self._event(trial, "FAILED")

    def on_step_end(self, iteration, trials, **info):
        if self._display is None and time.monotonic() - self._last_line >= self.every_s:
            self._last_line = time.monotonic()
            print(self.board.summary(), file=sys.stdout, flush=True)

    def on_experiment_end(self, trials, **info):
        if self._display is not None:
            self._display.stop()
            self._display = None
        print(self.board.summary(), file=sys.stdout, flush=True)


def _trial_key(trial) -> str:
    return (trial.config.get("trial") or {}).get("key", trial.trial_id)


def _config_of(spec: dict[str, Any]) -> str:
    """The configuration a trial is one seed of, as the board groups it."""
    from sweeps.grid import TrialSpec, config_key

    return config_key(TrialSpec.from_dict(spec))


class SeedGroupSearcher(Searcher):
    """Tune adapter for ``sweeps.optuna_search.SeedGroupSearch``."""

    def __init__(self, search: SeedGroupSearch) -> None:
        super().__init__(metric="objective", mode="max")
        self.search = search

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the search space is the spec's; Tune's config only holds constants

    def suggest(self, trial_id: str):
        suggestion = self.search.suggest(trial_id)
        return Searcher.FINISHED if suggestion is FINISHED else suggestion

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        value = (result or {}).get("objective")
        self.search.complete(trial_id, value, error or value is None)

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps(self.search.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.search.set_state(json.loads(Path(checkpoint_path).read_text()))


class RaceSearcher(Searcher):
    """Tune adapter for ``sweeps.race.SeedRace``: hands Tune the trials the races wait
    for (a round's seeds run concurrently), nothing while a round is still running, and
    FINISHED when every dataset's race has ended. The race replays from the trial
    directories, so this adapter holds no state worth saving: a restarted driver builds
    a new one and continues the same race."""

    def __init__(self, race, outcomes) -> None:
        super().__init__(metric="objective", mode="max")
        self.race = race
        self.outcomes = outcomes
        self.emitted: dict[str, str] = {}  # Tune trial id -> trial key (this driver)
        self._plan = None

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def _current(self):
        if self._plan is None:
            self._plan = self.race.plan()
        return self._plan

    def suggest(self, trial_id: str):
        plan = self._current()
        running = set(self.emitted.values())
        for trial in self.race.wanted_trials(plan):
            if trial.key not in running and not self.outcomes.ended(trial.key):
                self.emitted[trial_id] = trial.key
                return {"trial": trial.to_dict()}
        return Searcher.FINISHED if self.race.finished(plan) else None

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        key = self.emitted.get(trial_id)
        if key is not None and (error or not result):
            self.outcomes.mark_failed(key)
        self._plan = None  # the next suggestion replays the race with this outcome

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the race is replayed from the trial directories."""
        Path(checkpoint_path).write_text("{}")

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see :meth:`save`)."""


# -- tuners -----------------------------------------------------------------------
def trainable(cpu: float = 1.0, gpu: float = 0.0, train_fn=None):
    """The Tune trainable of every steadytune experiment (``run_trial`` with its per-trial
    resources): what ``tune.Tuner.restore(path, trainable=...)`` needs to reopen a run
    dir's experiment with Ray's own tools (docs/ray-tools.md). Public as
    ``sweeps.trainable``."""
    fn = tune.with_parameters(run_trial, train_fn=train_fn) if train_fn else run_trial
    return tune.with_resources(fn, {"cpu": cpu, "gpu": gpu})


def _dirname(trial) -> str:
    key = (trial.config.get("trial") or {}).get("key", "trial")
    return f"{key}_{trial.trial_id}"[:TUNE_TRIAL_DIRNAME_MAX]


def build_tuner(
    experiment: str,
    run_dir: str,
    *,
    trials: list[dict[str, Any]] | None = None,
    search: SeedGroupSearch | None = None,
    race: RaceSearcher | None = None,
    cpu: float,
    gpu: float,
    max_concurrent: int | None,
    max_failures: int,
    trackers: CallbacksSpec | None = None,
    sweep: str | None = None,
    train_fn=None,
) -> tune.Tuner:
    """A Tuner for the grid (``trials``), the Optuna search (``search``) or a seed race
    (``race``), feeding the trackers of sweep ``sweep``'s ``callbacks:``."""
    param_space: dict[str, Any] = {"run_dir": run_dir}
    if trials is not None:
        param_space["trial"] = tune.grid_search(trials)
        tune_config = tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            trial_dirname_creator=_dirname,
            reuse_actors=True,
        )
        total = len(trials)
    elif race is not None:
        total = None  # the race decides how many: count the trials Tune has
        tune_config = tune.TuneConfig(
            search_alg=race,
            # at most the grid at race.max; the searcher ends the race sooner
            num_samples=len(race.race.all_trials()),
            max_concurrent_trials=max_concurrent,
            trial_dirname_creator=_dirname,
            reuse_actors=True,
        )
    else:
        assert search is not None
        tune_config = tune.TuneConfig(
            search_alg=SeedGroupSearcher(search),
            num_samples=search.remaining_trials,
            max_concurrent_trials=max_concurrent,
            trial_dirname_creator=_dirname,
            reuse_actors=True,
        )
        total = search.remaining_trials
    run_config = tune.RunConfig(
        name=experiment,
        # local run dirs: each driver run is its own experiment under tune/, resumed from
        # the trial directories (nothing of Tune's is read back); remote: Tuner.restore
        storage_path=run_dir if is_remote(run_dir) else f"{run_dir}/{TUNE_DIR}",
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[
            ResultsCallback(run_dir),
            ProgressCallback(experiment, total),
            *logger_callbacks(trackers or CallbacksSpec(), run_dir, sweep or experiment),
        ],
        verbose=0,
    )
    return tune.Tuner(
        trainable(cpu, gpu, train_fn),
        param_space=param_space,
        tune_config=tune_config,
        run_config=run_config,
    )


def can_restore(run_dir: str, experiment: str) -> bool:
    return tune.Tuner.can_restore(f"{run_dir}/{experiment}")


def restore_tuner(run_dir: str, experiment: str, *, cpu: float, gpu: float, train_fn=None):
    """Continue an experiment whose driver died: finished trials are kept, unfinished and
    errored ones resume from their last checkpoint."""
    return tune.Tuner.restore(
        f"{run_dir}/{experiment}",
        trainable=trainable(cpu, gpu, train_fn),
        resume_unfinished=True,
        resume_errored=True,
    )


def fit(tuner: tune.Tuner) -> dict[str, int]:
    """Run it; return counts of trial outcomes."""
    grid = tuner.fit()
    errors = sum(1 for r in grid if r.error is not None)
    return {"trials": len(grid), "errors": errors}


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()


def remove_local_temp(temp_dir: str | None) -> None:
    """After ``shutdown()``: stop the local instance's watchdog (it would otherwise wait
    for the driver to exit) and delete a ``/tmp/st-ray-*`` private dir; one under the run
    dir stays, with the instance's logs. ``temp_dir`` is ``init_ray``'s, None for a
    cluster."""
    if temp_dir:
        from sweeps import local_ray

        local_ray.discard_instance(temp_dir)
