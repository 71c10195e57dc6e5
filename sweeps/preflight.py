"""The checks a trial would make, made once before Ray starts (and by ``--dry-run``).

Without them a missing data file, a single-class dataset or an unknown offline model
surfaces as every trial failing, being retried and failing again on the cluster, with a
traceback at the end. Here the same code the trainer runs (``trainer.data.load_splits``,
``trainer.models``) loads and validates each distinct dataset and model once, so
``--dry-run`` fails exactly where the real run would, with the trainer's own one-line
message, and the real run fails before any process starts.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from sweeps.grid import SweepPlan
from sweeps.rundir import check_owned, check_writable, is_remote, nearest_existing
from sweeps.spec import SweepSpec
from trainer.config import TrainConfig
from trainer.errors import ConfigError, UserInputError
from trainer.layout import (
    OPTUNA_EXPERIMENT,
    RUN_MARKER,
    TUNE_DIR,
    TUNE_TRIAL_DIRNAME_MAX,
    trial_dir,
)
from trainer.loading import load_config
from trainer.messages import parameter_message


def _trial_configs(plan: SweepPlan) -> list[tuple[str, TrainConfig]]:
    """(dataset label, config) of every grid trial and of one probe per search cell."""
    trials = [*plan.grid, *(cell["probe"] for cell in plan.cells)]
    return [(t.dataset, load_config(t.config)) for t in trials]


def check_data(configs: list[tuple[str, TrainConfig]]) -> None:
    """Load and validate every distinct data section (files, columns, labels, encoding)."""
    from trainer.data import load_splits

    seen: set[str] = set()
    for label, config in configs:
        fingerprint = json.dumps(config.data.model_dump(mode="json"), sort_keys=True)
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        try:
            load_splits(config.data)
        except UserInputError as err:
            raise type(err)(f"dataset {label!r}: {err}") from None


def check_models(configs: list[tuple[str, TrainConfig]]) -> None:
    """Every model resolvable here, and each trial's config within what its model can run
    (``trainer.models.check_model_limits``: ``max_length`` within its positions, the
    strategy's parts' model checks)."""
    from trainer.config import default_cache_dir
    from trainer.loading import config_to_dict
    from trainer.models import check_model_limits, check_model_resolvable

    resolved: dict[tuple[str, str], str] = {}
    checked: set[str] = set()
    for label, config in configs:
        cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        where = (config.model, str(cache))
        if where not in resolved:
            resolved[where] = check_model_resolvable(config.model, cache)
        # the seed changes nothing a model check reads: one check per config without it
        fingerprint = json.dumps({**config_to_dict(config), "seed": None}, sort_keys=True)
        if fingerprint not in checked:
            checked.add(fingerprint)
            try:
                check_model_limits(config, resolved[where])
            except ConfigError as err:
                raise ConfigError(f"dataset {label!r}: {err}") from None


def check_local_resources(spec: SweepSpec, num_cpus: int | None) -> None:
    """A local instance has this machine's CPUs (or ``--num-cpus``) and GPUs: a trial
    asking for more would wait forever, so refuse it now. (On a cluster the same check
    runs against ``ray.nodes()`` once connected, still before any trial starts.)"""
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"--num-cpus must be at least 1 (the local Ray instance's CPUs), "
                          f"got {num_cpus}")  # fmt: skip
    if num_cpus:
        cpus = num_cpus
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    if spec.resources.cpu > cpus:
        raise ConfigError(
            parameter_message(
                "resources.cpu",
                f"must be at most the {cpus} CPUs of the local Ray instance (this machine, "
                "or --num-cpus)",
                spec.resources.cpu,
            )
        )
    gpu = spec.resources.gpu
    if gpu == "auto" or not gpu:
        return
    import torch

    have = torch.cuda.device_count()
    if have < math.ceil(gpu):
        raise ConfigError(
            parameter_message(
                "resources.gpu",
                f"must be at most the {have} GPU(s) this machine has (use gpu: 0 to run on "
                "CPUs, or auto)",
                gpu,
            )
        )


def check_optuna_storage(spec: SweepSpec) -> None:
    """An explicit ``search.storage`` must be reachable (the default lives in the run dir)."""
    url = spec.search.storage if spec.search else None
    if not url:
        return
    if url.startswith("sqlite:///"):
        folder = Path(url.removeprefix("sqlite:///")).parent
        if not folder.is_dir():  # SQLite creates the file, never its folder
            raise ConfigError(
                parameter_message(
                    "search.storage", f"must be reachable: {str(folder)!r} is not a directory", url
                )
            )
        check_writable(folder, "'search.storage'")
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect():
            pass
    except Exception as exc:  # drivers raise their own types: all mean "unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            parameter_message("search.storage", f"must be reachable: {first}", url)
        ) from None


# callbacks: key -> (the module its Tune callback imports, what to install)
_TRACKER_PACKAGES = {"mlflow": ("mlflow", "mlflow-skinny"), "wandb": ("wandb", "wandb")}


def check_trackers(spec: SweepSpec) -> None:
    """Each tracker the spec's ``callbacks:`` names is importable: Tune would otherwise
    fail at its first trial, after Ray started."""
    import importlib.util

    for key, (module, package) in _TRACKER_PACKAGES.items():
        if getattr(spec.callbacks, key) is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"'callbacks.{key}': the {module} package is not installed (pip install "
                f"{package}, or steadytune[trackers] for both trackers)"
            )


# The deepest file a trial writes below its own directory (``checkpoint/`` and a temp
# name beside it, ``trainer.checkpoint``) and below its Tune trial directory (Tune's
# checkpoint and result files), with room to spare; the longest experiment directory.
_BELOW_TRIAL = len("/.checkpoint-999999/model.safetensors.tmp-xxxxxxxx")
_BELOW_TUNE = len("/checkpoint_000000/.metadata.json.tmp-xxxxxxxx")
_EXPERIMENT = len(f"/{TUNE_DIR}/{OPTUNA_EXPERIMENT}-20261208-000000/")
_TUNE_TRIAL_ID = len("_8cd71_00005")


def deepest_path(run_dir: str, key: str) -> int:
    """Bytes of the longest path a trial of ``key`` creates under ``run_dir``: in its
    own directory or in its Tune trial directory."""
    own = len(str(trial_dir(run_dir, key)).encode()) + _BELOW_TRIAL
    tune_name = min(len(key.encode()) + _TUNE_TRIAL_ID, TUNE_TRIAL_DIRNAME_MAX)
    return max(own, len(run_dir.encode()) + _EXPERIMENT + tune_name + _BELOW_TUNE)


def check_path_lengths(plan: SweepPlan, run_dir: str) -> None:
    """Every trial directory's name fits a file name, and every file a trial writes fits
    a path, on the file system of the run dir: otherwise the first trial to start fails
    with "File name too long", after ``sweep.json`` is written."""
    existing = nearest_existing(Path(run_dir))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for t in plan.grid:
        name = len(t.key.encode())
        path = deepest_path(run_dir, t.key)
        if name > name_max or path > path_max:
            limit = (
                f"{name} bytes, above the {name_max} a file name may have"
                if name > name_max
                else f"a path of {path} bytes, above {path_max}"
            )
            raise ConfigError(
                f"trial directory {t.key[:60]!r}… (dataset {t.dataset[:40]!r}) would be "
                f"{limit} on {str(existing)!r}: give the dataset a short 'id', or a "
                "shorter 'storage'"
            )


def preflight(
    plan: SweepPlan,
    run_dir: str,
    *,
    address: str | None,
    num_cpus: int | None,
) -> None:
    """Everything a trial or the driver would refuse, refused now (``UserInputError``)."""
    spec = plan.spec
    if not is_remote(run_dir):
        check_writable(run_dir, "the run directory ('storage'/'name' or --run-dir)")
        check_path_lengths(plan, run_dir)
        check_owned(run_dir, RUN_MARKER, "the run directory ('storage'/'name' or --run-dir)")
    if address is None:
        check_local_resources(spec, num_cpus)
    check_optuna_storage(spec)
    check_trackers(spec)
    configs = _trial_configs(plan)
    check_data(configs)
    check_models(configs)
