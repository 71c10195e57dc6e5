"""Reading a run: ``results.parquet`` as a tidy table, the trials' histories, what is missing.

This is the only module of ``analysis`` (with ``_ensemble.run_ensembles`` and
``_report.write_report``) that touches files; everything it returns is a plain DataFrame
that the statistics take as input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.errors import UserInputError
from trainer.knobs import ordered_keys, parse_label
from trainer.layout import ENSEMBLES_FILE, RESULTS_FILE, SWEEP_FILE, read_parquet_file
from trainer.metrics import METRIC_NAMES
from trainer.recorded import upgrade_table
from trainer.strategies import HEADLINE, STRATEGY_KNOBS, knob

FINISHED = "TERMINATED"
DIVERGED = "DIVERGED"  # finished early: the training loss went non-finite (its metrics count)

# What makes a configuration (its seeds are its rows): the dataset, the strategy, its knobs
# in one sortable label (``settings``: "distill.k=all distill.lambda=1 optim.lr=2e-05"; ""
# when none; ``trainer.knobs``), whose values also have a column each, named by the dotted
# key (:func:`knob_columns`); and its key (the trial key without the seed) that names it
# in a race and in ``selection.yaml``.
CONFIG_COLUMNS = ("dataset", "strategy", "settings", "config_key")
PATH_COLUMNS = ("result_path", "logits_path", "model_path")
SPLITS = ("dev", "test")
# The ``role`` of a fresh-seed confirmation trial (``sweeps.confirm``); a selection
# trial's is empty.
CONFIRM_ROLE = "confirm"


class AnalysisError(UserInputError):
    """A run directory or table that cannot be analysed; the message says what is wrong."""


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _run_dir_and_file(source: str | Path) -> tuple[Path, Path]:
    path = Path(source)
    if path.is_dir():
        return path, path / RESULTS_FILE
    return path.parent, path


def resolve_path(value: str | None, run_dir: Path) -> str | None:
    """A path from the table that exists here, or ``None``.

    Paths written on another machine (a cluster's absolute paths) are tried relative to
    ``run_dir`` with their leading parts dropped one at a time, so ``/scratch/u/runs/q/
    trials/k/result.json`` finds ``<run_dir>/trials/k/result.json``.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    path = Path(str(value))
    if path.exists():
        return str(path)
    if not path.is_absolute() and (run_dir / path).exists():
        return str(run_dir / path)
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for i in range(len(parts)):
        candidate = run_dir.joinpath(*parts[i:])
        if candidate.exists():
            return str(candidate)
    return None


def load(source: str | Path) -> pd.DataFrame:
    """The sweep's results as a tidy table: one row per trial.

    Parameters
    ----------
    source : str or Path
        A run directory (``<storage>/<name>``, holding ``results.parquet``) or the
        parquet file itself. A run dir copied off a cluster works: paths in the table
        that do not exist here are resolved relative to the run directory.

    Returns
    -------
    pandas.DataFrame
        The columns of ``results.parquet`` (``dataset``, ``strategy``, ``seed``,
        ``settings`` (the configuration's knobs as one label), a column per knob named
        by its dotted key (``distill.k`` as text, ``noise.lambda``, ...), ``status``,
        ``primary_dev_score``, metric columns such as ``dev_accuracy``, ...) plus ``finished``
        (status is TERMINATED or DIVERGED and the primary metric is known) and
        ``diverged`` (the training loss went non-finite; the trial stopped there and is
        scored by its model at that step). ``result_path``,
        ``logits_path`` and ``model_path`` hold paths that exist here, or missing values.
        ``one_class_on_dev``: the student predicts one class for all of dev (None
        where the logits are not here).
        ``df.attrs["run_dir"]`` is the run directory.

    Examples
    --------
    >>> df = analysis.load("runs/quickstart")  # doctest: +SKIP
    >>> df.groupby("strategy")["dev_accuracy"].mean()  # doctest: +SKIP
    """
    run_dir, file = _run_dir_and_file(source)
    if not file.is_file():
        if (run_dir / SWEEP_FILE).is_file():
            raise AnalysisError(
                f"{run_dir} has no {RESULTS_FILE} yet: no trial of this sweep has finished"
            )
        raise AnalysisError(
            f"{source} is neither a sweep run directory (no {RESULTS_FILE}) nor a parquet file"
        )
    try:
        df = read_parquet_file(file)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise AnalysisError(f"{file} cannot be read as parquet: {exc}") from exc
    df = tidy(df, run_dir)
    paths = df["logits_path"] if "logits_path" in df else [None] * len(df)
    df["one_class_on_dev"] = [predicts_one_class(path) for path in paths]
    return df


def predicts_one_class(logits_path: str | float | None) -> bool | None:
    """Whether a trial's student predicts one value for all of dev: the same class for
    every example (or the same tag for every word), or the same score (None where its
    ``logits.npz`` is not here). Such a trial is the constant predictor: its metrics
    measure the label distribution, not the strategy."""
    if logits_path is None or pd.isna(logits_path):
        return None
    with np.load(logits_path) as arrays:
        if "dev_logits" not in arrays:
            return None
        outputs = np.nan_to_num(arrays["dev_logits"])
    if outputs.shape[-1] == 1:  # a regression's scores
        return bool(np.ptp(outputs) == 0)
    return bool(len(np.unique(outputs.argmax(axis=-1))) == 1)


def knob_columns(df: pd.DataFrame) -> list[str]:
    """The knob columns of a table: every key its ``settings`` labels name, in label
    order (the headline knobs first), that is a column of ``df``."""
    labels = df["settings"].dropna().unique() if "settings" in df.columns else []
    keys = {key for label in labels for key, _ in parse_label(label)}
    return [k for k in ordered_keys(keys, HEADLINE) if k in df.columns]


def attach_knobs(out: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """``out`` (one row per configuration, with ``config_key``) with the knob columns of
    ``df`` beside its configuration columns."""
    knobs = [k for k in knob_columns(df) if k not in out.columns]
    if not knobs or out.empty:
        return out
    values = df.drop_duplicates("config_key").set_index("config_key")[knobs]
    at = list(out.columns).index("config_key") + 1
    joined = out.join(values, on="config_key")
    return joined[[*out.columns[:at], *knobs, *out.columns[at:]]]


def _shared_settings(label: str) -> str:
    """The part of a ``settings`` label that vanilla reads too (``optim.lr=2e-05``, not
    ``reinit.layers=2``): what a configuration's vanilla reference must share."""
    return " ".join(f"{k}={v}" for k, v in parse_label(label) if k not in STRATEGY_KNOBS)


def _with_reference_settings(datasets: pd.Series, settings: pd.Series) -> pd.Series:
    """Dataset labels that tell apart the groups a swept shared setting makes.

    Every configuration is compared with vanilla at the same seeds *and* the same shared
    settings: with ``grid: {optim.lr: [2e-5, 5e-5]}``, SDA at 5e-5 against vanilla at 5e-5,
    never against both vanillas pooled. Where a dataset holds more than one such group,
    each becomes its own unit of decision, ``sst2 [optim.lr=5e-05]``.
    """
    shared = settings.map(_shared_settings)
    several = shared.groupby(datasets).transform("nunique") > 1
    labelled = datasets + " [" + shared + "]"
    return datasets.where(~several | (shared == ""), labelled)


def tidy(df: pd.DataFrame, run_dir: str | Path | None = None) -> pd.DataFrame:
    """Normalise a results table (column types, resolved paths, ``finished``)."""
    required = {"dataset", "strategy", "seed"}
    missing = sorted(required - set(df.columns))
    if missing:
        raise AnalysisError(f"the results table has no column(s) {missing}")
    df = upgrade_table(df.copy())
    for col in (*CONFIG_COLUMNS, "status", "primary_metric", "optuna_cell", "optuna_trial", "key",
                "curve", "role"):  # fmt: skip
        if col not in df.columns:
            df[col] = None
    if "primary" in df.columns:  # the name before 0.1.0's results said what it holds
        legacy = df.pop("primary")
        df["primary_dev_score"] = df.get("primary_dev_score", legacy).fillna(legacy)
    for col in ("primary_dev_score", "optuna_trial"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["settings"] = df["settings"].fillna("").astype(str)
    for col in knob_columns(df):
        if knob(col).categorical:  # K: text, an int or 'all' (sorted by trainer.knobs)
            df[col] = df[col].map(lambda v: None if _missing(v) else str(v)).astype(object)
    df["dataset"] = _with_reference_settings(df["dataset"].astype(str), df["settings"])
    if df["config_key"].isna().all():  # a table written before config_key was recorded
        ids = list(CONFIG_COLUMNS[:-1])
        df["config_key"] = ["|".join(map(str, r)) for r in df[ids].itertuples(index=False)]
    df["seed"] = pd.to_numeric(df["seed"]).astype("int64")
    df["status"] = df["status"].fillna(FINISHED)
    df["primary_metric"] = df["primary_metric"].fillna("accuracy")
    if "primary_dev_score" not in df.columns:
        df["primary_dev_score"] = [
            row.get(f"dev_{row['primary_metric']}") for row in df.to_dict("records")
        ]
    # A diverged seed is a finished seed: scored by its model as it stood when the loss
    # went non-finite, it enters every statistic like any other seed (never dropped).
    df["diverged"] = df["status"] == DIVERGED
    df["finished"] = df["status"].isin([FINISHED, DIVERGED]) & df["primary_dev_score"].notna()
    if run_dir is not None:
        run_dir = Path(run_dir)
        for col in PATH_COLUMNS:
            if col in df.columns:
                df[col] = [resolve_path(v, run_dir) for v in df[col]]
        df.attrs["run_dir"] = str(run_dir)
    return df


# A metric column: [averaged_]<split>_<metric>, the split without underscores
# (trainer.data_config's split names), the metric one trainer.metrics knows.
_METRIC_COLUMN = re.compile(
    r"(?:averaged_)?[a-z][a-z0-9-]*_(" + "|".join(sorted(METRIC_NAMES, key=len)[::-1]) + r")"
)


def dataset_names(df: pd.DataFrame) -> list[str]:
    """The datasets of ``df`` in reading order: by name, and a learning curve's sizes
    smallest first (``sst2@200`` before ``sst2@1000``, which a plain sort inverts)."""

    def reading_order(name: str) -> tuple[str, str, int]:
        # "sst2@200", or "sst2@200 [optim.lr=2e-05]" where a shared setting is swept
        sized = re.fullmatch(r"(.+)@(\d+)( \[.*\])?", name)
        return (sized[1], sized[3] or "", int(sized[2])) if sized else (name, "", -1)

    return sorted(df["dataset"].astype(str).unique(), key=reading_order)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The metric columns present: ``dev_accuracy``, ``averaged_test_mcc``,
    ``de_entity_f1`` (an extra evaluation split), ..."""
    return [c for c in df.columns if isinstance(c, str) and _METRIC_COLUMN.fullmatch(c)]


def splits_of(df: pd.DataFrame) -> list[str]:
    """The splits a table scores (a column of one with no value is none): dev and test
    first, then the extras by name."""
    scored = [c for c in metric_columns(df) if df[c].notna().any()]
    found = {c.removeprefix("averaged_").split("_", 1)[0] for c in scored}
    return [s for s in SPLITS if s in found] + sorted(found - set(SPLITS))


def is_confirmation(df: pd.DataFrame) -> pd.Series:
    """The rows of fresh-seed confirmation trials (``role`` ``confirm``, ``sweeps.confirm``):
    trained after the selection, and never part of it."""
    if "role" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["role"].astype(object).eq(CONFIRM_ROLE)


def long_metrics(df: pd.DataFrame, *, confirmation: bool = False) -> pd.DataFrame:
    """Finished trials in long form: one row per (trial, model, split, metric).

    ``model`` is ``student`` (columns ``dev_*``, ``test_*``) or ``averaged``
    (``averaged_dev_*``: SE's averaged model, SDA's teacher). The selection's trials, so
    that every statistic, test and choice is made on them alone; ``confirmation``: the
    fresh-seed confirmation trials instead.
    """
    done = df[df["finished"]] if "finished" in df.columns else df
    done = done[is_confirmation(done) == confirmation]
    ids = [c for c in (*CONFIG_COLUMNS, *knob_columns(done), "seed", "key", "optuna_trial")
           if c in done.columns]  # fmt: skip
    frames = []
    for col in metric_columns(done):
        model, rest = (
            ("averaged", col[len("averaged_") :])
            if col.startswith("averaged_")
            else (
                "student",
                col,
            )
        )
        split, metric = rest.split("_", 1)
        part = done[ids].copy()
        part["model"], part["split"], part["metric"] = model, split, metric
        part["value"] = pd.to_numeric(done[col], errors="coerce").astype("float64")
        frames.append(part[part["value"].notna()])
    columns = [*ids, "model", "split", "metric", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def load_histories(df: pd.DataFrame) -> pd.DataFrame:
    """Learning curves of the finished trials, read from their ``result.json``.

    Returns one row per (trial, evaluation, model, split, metric) with the
    configuration columns, ``seed``, ``step``, ``epoch``, ``train_loss``, ``model``,
    ``split``, ``metric``, ``value``. Trials whose ``result.json`` is not found are
    skipped (``attrs["missing"]`` lists their keys). ``attrs`` also keeps the datasets and
    metrics of ``df``, so the learning curves know a dataset none of whose trials finished.
    """
    rows, missing = [], []
    knobs = knob_columns(df)
    for trial in df[df["finished"]].to_dict("records"):
        path = trial.get("result_path")
        if not isinstance(path, str) or not Path(path).is_file():
            missing.append(trial.get("key"))
            continue
        try:
            history = json.loads(Path(path).read_text()).get("history") or []
        except (OSError, json.JSONDecodeError):
            missing.append(trial.get("key"))
            continue
        ids = {c: trial.get(c) for c in (*CONFIG_COLUMNS, *knobs, "seed", "key")}
        for entry in history:
            base = {
                **ids,
                "step": entry.get("step"),
                "epoch": entry.get("epoch"),
                "train_loss": entry.get("train_loss"),
            }
            blocks = [("student", s, entry.get(s)) for s in SPLITS]
            averaged = entry.get("averaged") or {}
            blocks += [("averaged", s, averaged.get(s)) for s in SPLITS]
            for model, split, scores in blocks:
                for metric, value in (scores or {}).items():
                    rows.append(
                        {**base, "model": model, "split": split, "metric": metric, "value": value}
                    )
    out = pd.DataFrame(
        rows,
        columns=[
            *CONFIG_COLUMNS,
            *knobs,
            "seed",
            "key",
            "step",
            "epoch",
            "train_loss",
            "model",
            "split",
            "metric",
            "value",
        ],
    )
    out.attrs["missing"] = missing
    # the results' names, so that a dataset without a single history is known, not misspelt
    from analysis._names import DATASETS_ATTR, METRICS_ATTR, known_datasets, known_metrics

    out.attrs[DATASETS_ATTR] = known_datasets(df)
    out.attrs[METRICS_ATTR] = known_metrics(df)
    return out


def expected_trials(run_dir: str | Path) -> list[str] | None:
    """The grid trial keys the sweep planned (``sweep.json``), or ``None`` if unknown."""
    path = Path(run_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    try:
        return list(json.loads(path.read_text()).get("grid_keys") or [])
    except (OSError, json.JSONDecodeError):
        return None


def load_ensembles(run_dir: str | Path) -> pd.DataFrame | None:
    """``ensembles.parquet`` written by ``steadytune ensemble``, or ``None``."""
    path = Path(run_dir) / ENSEMBLES_FILE
    return upgrade_table(read_parquet_file(path)) if path.is_file() else None
