"""``results.parquet``: one row per finished trial, upserted as trials finish.

The file is rewritten whole (the table is small: one row per trial) to a temporary
name and renamed over the old one, so a reader (``pandas.read_parquet``) never sees a
half-written file. Rows are keyed by the trial key: a trial that finishes again (a
retry, a resumed sweep) replaces its row, so every trial appears exactly once.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

ID_COLUMNS = (
    "dataset",
    "strategy",
    "seed",
    "noise_lambda",
    "distill_lambda",
    "teacher_k",
    "optuna_trial",
    "optuna_cell",
)
FILE_NAME = "results.parquet"


def make_row(
    trial: dict[str, Any], metrics: dict[str, Any], *, trial_id: str, status: str
) -> dict[str, Any]:
    """A results row from the trial spec (``TrialSpec.to_dict()``) and its last metrics."""
    k = trial.get("teacher_k")
    row: dict[str, Any] = {
        "key": trial["key"],
        "dataset": trial["dataset"],
        "strategy": trial["strategy"],
        "seed": trial["seed"],
        "noise_lambda": trial.get("noise_lambda"),
        "distill_lambda": trial.get("distill_lambda"),
        # one column type: K is an int or 'all'
        "teacher_k": None if k is None else str(k),
        "optuna_trial": trial.get("optuna_trial"),
        "optuna_cell": trial["group"] if trial.get("group", "grid") != "grid" else None,
        "primary_metric": trial["primary_metric"],
        "primary": metrics.get("objective"),
        "trial_id": trial_id,
        "status": status,
    }
    for name in ("runtime_s", "git_commit", "result_path", "logits_path", "model_path"):
        row[name] = metrics.get(name)
    versions = metrics.get("versions")
    if isinstance(versions, str) and versions:
        for lib, ver in json.loads(versions).items():
            row[f"version_{lib}"] = ver
    for name, value in metrics.items():
        head = name.split("/", 1)[0]
        if head in ("dev", "test", "averaged") and isinstance(value, (int, float)):
            row[name.replace("/", "_")] = value
    if status != "TERMINATED":
        row["primary"] = None
    return row


def upsert_rows(path: str, rows: list[dict[str, Any]]) -> None:
    """Replace the rows with the same ``key`` (or append), and write the file atomically."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return
    new = pd.DataFrame(rows)
    old = read_results(path)
    if old is not None and len(old):
        old = old[~old["key"].isin(new["key"])]
        frame = pd.concat([old, new], ignore_index=True) if len(old) else new
    else:
        frame = new
    frame = frame.sort_values("key", kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "://" in path:
        # object stores replace an object atomically on upload
        pq.write_table(table, path)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".parquet", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_results(path: str):
    """The results table, or ``None`` when no trial has finished yet."""
    import pandas as pd
    import pyarrow.fs as pafs

    if "://" in path:
        fs, inner = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            return None
        return pd.read_parquet(path)
    return pd.read_parquet(path) if Path(path).is_file() else None
