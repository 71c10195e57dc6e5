"""Seed ensembles, the papers' baselines: VOTE (sum of the members' probabilities; a
regression's mean score; a tagger's per word) and AVG (the mean of the members' weights,
evaluated once).

``vote`` and ``average_weights`` are pure; ``run_ensembles`` reads the trials' logits and
weights and writes ``ensembles.parquet`` beside ``results.parquet``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis._load import CONFIG_COLUMNS, SPLITS, AnalysisError, is_confirmation, load
from analysis._tables import config_label
from trainer.layout import ENSEMBLES_FILE, LOGITS_FILE, MODEL_FILE, read_parquet_file

METHODS = ("vote", "avg")


def _exists(path: object) -> bool:
    return isinstance(path, str) and bool(path) and Path(path).is_file()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def vote(logits: Sequence[np.ndarray]) -> np.ndarray:
    """VOTE: the sum over members of their softmax probabilities, ``[n, classes]`` (one
    row per example, or per scored word of a tagger); for a regression's scores
    (``[n, 1]``), their mean.

    The prediction is its argmax; dividing by the number of members gives the mean
    probability without changing it.
    """
    if not logits:
        raise AnalysisError("vote needs at least one member's logits")
    shapes = {np.shape(x) for x in logits}
    if len(shapes) != 1:
        raise AnalysisError(f"members' logits have different shapes {sorted(shapes)}")
    if shapes.pop()[-1] == 1:  # scores
        return np.mean(np.asarray(logits, dtype=np.float64), axis=0)
    return np.sum([softmax(x) for x in logits], axis=0)


def average_weights(state_dicts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """AVG: the element-wise mean of the members' floating-point tensors.

    Integer tensors (BERT's ``position_ids`` buffer) are copied from the first member,
    not averaged, as ``torch.optim.swa_utils.AveragedModel`` does for buffers; they must
    be equal across members.
    """
    import torch

    if not state_dicts:
        raise AnalysisError("average_weights needs at least one state dict")
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], start=1):
        if list(sd) != keys:
            raise AnalysisError(f"member {i} has other parameter names than member 0")
    out = {}
    for name in keys:
        first = state_dicts[0][name]
        if torch.is_floating_point(first):
            stacked = torch.stack([sd[name].to(torch.float64) for sd in state_dicts])
            out[name] = stacked.mean(dim=0).to(first.dtype)
        else:
            for sd in state_dicts[1:]:
                if not torch.equal(sd[name], first):
                    raise AnalysisError(f"non-float tensor {name!r} differs between members")
            out[name] = first.clone()
    return out


def seed_groups(seeds: Sequence[int], size: int | None) -> list[tuple[int, ...]]:
    """Disjoint groups of ``size`` seeds in sorted order (default: one group of all)."""
    seeds = sorted(int(s) for s in seeds)
    size = size or len(seeds)
    return [tuple(seeds[i : i + size]) for i in range(0, len(seeds) - size + 1, size)]


def _metrics(outputs: np.ndarray, arrays: dict[str, Any], split: str) -> dict[str, float]:
    """The task's metrics of ensemble outputs on ``split``, with the labels (and a
    tagger's sentence offsets and tag names) the members' ``logits.npz`` keep."""
    from trainer.metrics import score

    names = arrays.get("label_names")
    labels = np.asarray(arrays[f"{split}_labels"])
    tags = None if names is None else list(names)
    return score(np.asarray(outputs), labels, arrays.get(f"{split}_offsets"), tags)


def _splits(arrays: dict[str, Any]) -> list[str]:
    """The splits a trial's ``logits.npz`` holds labels of: dev, test, the extras."""
    found = {key.removesuffix("_labels") for key in arrays if key.endswith("_labels")}
    return [s for s in SPLITS if s in found] + sorted(found - set(SPLITS))


def _vote_rows(members: pd.DataFrame) -> list[dict[str, Any]]:
    """VOTE of the student models, and of the averaged models where the members have them."""
    files = []
    for path in members["logits_path"]:
        if not _exists(path):
            return []
        with np.load(path) as npz:
            files.append({k: npz[k] for k in npz.files})
    rows = []
    for model, prefix in (("student", ""), ("averaged", "averaged_")):
        row: dict[str, Any] = {"model": model}
        for split in _splits(files[0]):
            key = f"{prefix}{split}_logits"
            if not all(key in f and f"{split}_labels" in f for f in files):
                continue
            labels = files[0][f"{split}_labels"]
            if any(not np.array_equal(f[f"{split}_labels"], labels) for f in files):
                raise AnalysisError(f"members' {split} labels differ: not the same {split} set")
            scores = _metrics(vote([f[key] for f in files]), files[0], split)
            row.update({f"{split}_{m}": v for m, v in scores.items()})
        if len(row) > 1:
            rows.append(row)
    return rows


def _avg_row(members: pd.DataFrame) -> dict[str, Any] | None:
    import json

    from safetensors.torch import load_file

    from trainer import load_config

    paths = list(members["model_path"])
    if not all(_exists(p) for p in paths):
        return None
    try:
        from trainer.inference import evaluate_weights
    except ImportError as exc:
        raise AnalysisError(
            "AVG needs trainer.inference.evaluate_weights, which this installation lacks"
        ) from exc
    result = json.loads(Path(members["result_path"].iloc[0]).read_text())
    config = load_config(result["config"])
    state = average_weights([load_file(p) for p in paths])
    try:
        out = evaluate_weights(config, state)
    except RuntimeError as exc:  # load_state_dict: the weights do not fit the model
        first = str(exc).strip().splitlines()[0]
        raise AnalysisError(
            f"AVG: the averaged weights of {', '.join(paths[:1])}… do not load into "
            f"{config.model!r}: {first}"
        ) from exc
    row: dict[str, Any] = {"model": "student"}
    out["label_names"] = np.asarray(result.get("label_names") or [])
    for split in _splits(out):
        if f"{split}_logits" in out:
            scores = _metrics(out[f"{split}_logits"], out, split)
            row.update({f"{split}_{m}": v for m, v in scores.items()})
    return row


def ensemble_table(
    df: pd.DataFrame,
    *,
    methods: Sequence[str] = METHODS,
    size: int | None = None,
    datasets: Sequence[str] | None = None,
    strategies: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """VOTE/AVG rows for every configuration of a loaded run (reads logits and weights).

    Returns the rows and notes on configurations that were skipped (and why).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise AnalysisError(f"unknown ensemble method(s) {bad}; allowed: {list(METHODS)}")
    done = df[df["finished"] & ~is_confirmation(df)]  # ensembles of the selection's seeds
    if datasets:
        done = done[done["dataset"].isin(list(datasets))]
    if strategies:
        done = done[done["strategy"].isin(list(strategies))]
    rows, notes, no_weights = [], [], []
    for key, group in done.groupby(list(CONFIG_COLUMNS), dropna=False, sort=True):
        config = dict(zip(CONFIG_COLUMNS, key, strict=True))
        label = config_label(config, with_dataset=True)
        group = group.drop_duplicates("seed").sort_values("seed")
        groups = seed_groups(group["seed"], size)
        if not groups or len(groups[0]) < 2:
            notes.append(f"{label}: {len(group)} seed(s), fewer than an ensemble of 2 needs")
            continue
        for gi, seeds in enumerate(groups):
            members = group[group["seed"].isin(seeds)]
            made: list[tuple[str, dict[str, Any]]] = []
            if "vote" in methods:
                vrows = _vote_rows(members)
                if not vrows:
                    notes.append(f"{label} seeds {seeds}: VOTE skipped, a {LOGITS_FILE} is missing")
                made += [("vote", r) for r in vrows]
            if "avg" in methods:
                try:
                    arow = _avg_row(members) if "model_path" in members else None
                except AnalysisError as err:
                    notes.append(f"{label} seeds {seeds}: AVG failed: {err}")
                else:
                    if arow is None:
                        no_weights.append(f"{label} {seeds}")
                    else:
                        made.append(("avg", arow))
            for method, r in made:
                rows.append(
                    {
                        **config,
                        "method": method,
                        "size": len(seeds),
                        "group": gi,
                        "seeds": ",".join(map(str, seeds)),
                        **r,
                    }
                )
    if no_weights:
        notes.append(
            f"AVG skipped for {len(no_weights)} ensemble(s) whose members have no "
            f"{MODEL_FILE} (train with save_model: true): "
            + "; ".join(no_weights[:5])
            + (" …" if len(no_weights) > 5 else "")
        )
    out = pd.DataFrame(rows)
    if not out.empty:
        out["ensemble_key"] = [
            f"{config_label(r, with_dataset=True)}|{r['method']}|{r['model']}|{r['seeds']}"
            for r in out.to_dict("records")
        ]
    return out, notes


def run_ensembles(
    run_dir: str | Path,
    *,
    methods: Sequence[str] = METHODS,
    size: int | None = None,
    datasets: Sequence[str] | None = None,
    strategies: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Build VOTE/AVG ensembles for a run and upsert them into ``<run_dir>/ensembles.parquet``.

    Parameters
    ----------
    run_dir : str or Path
        The sweep's run directory.
    methods : sequence of {"vote", "avg"}
        VOTE needs the members' ``logits.npz``; AVG their ``model.safetensors``.
    size : int, optional
        Members per ensemble; the seeds of a configuration (sorted) are cut into
        disjoint groups of this size. Default: one ensemble of all its seeds.
    datasets, strategies : sequence of str, optional
        Only these.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The ensembles built now (``ensembles.parquet`` keeps earlier ones too: an
        ensemble built again replaces its row), and notes on those skipped.
    """
    run_dir = Path(run_dir)
    df = load(run_dir)
    new, notes = ensemble_table(
        df, methods=methods, size=size, datasets=datasets, strategies=strategies
    )
    path = run_dir / ENSEMBLES_FILE
    old = read_parquet_file(path) if path.is_file() else None
    if old is not None and not new.empty:
        old = old[~old["ensemble_key"].isin(new["ensemble_key"])]
    frames = [f for f in (old, new) if f is not None and not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else new
    if not new.empty:
        fd, tmp = tempfile.mkstemp(prefix=".ensembles-", suffix=".parquet", dir=run_dir)
        os.close(fd)
        try:
            table.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return new, notes


def ensemble_summary(ensembles: pd.DataFrame, df: pd.DataFrame, metric_of: dict) -> pd.DataFrame:
    """Ensembles next to their members: per (configuration, method, model, size) the mean
    ensemble score over its groups and the mean single-model score of the same seeds."""
    if ensembles is None or ensembles.empty:
        return pd.DataFrame()
    rows = []
    single = df[df["finished"]]
    for r in ensembles.to_dict("records"):
        m = metric_of.get(r["dataset"], "accuracy")
        col = f"dev_{m}"
        if col not in r or r[col] is None or (isinstance(r[col], float) and math.isnan(r[col])):
            continue
        seeds = [int(s) for s in str(r["seeds"]).split(",")]
        member_col = col if r["model"] == "student" else f"averaged_{col}"
        same = single
        for c in CONFIG_COLUMNS:
            v = r.get(c)
            same = same[same[c].isna()] if v is None or pd.isna(v) else same[same[c] == v]
        same = same[same["seed"].isin(seeds)]
        members = same[member_col].mean() if member_col in same else math.nan
        rows.append(
            {
                **{c: r.get(c) for c in CONFIG_COLUMNS},
                "method": r["method"],
                "model": r["model"],
                "size": r["size"],
                "metric": m,
                "ensemble": r[col],
                "members_mean": members,
            }
        )
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)
    keys = [*CONFIG_COLUMNS, "method", "model", "size", "metric"]
    out = (
        out.groupby(keys, dropna=False, sort=True)
        .agg(
            groups=("ensemble", "size"),
            ensemble=("ensemble", "mean"),
            members_mean=("members_mean", "mean"),
        )
        .reset_index()
    )
    out["gain"] = out["ensemble"] - out["members_mean"]
    out["label"] = [config_label(r) for r in out.to_dict("records")]
    return out
