"""Read the configured data source into one raw DataFrame per split.

Nothing here judges the rows (that is ``validation``): a reader only has to return every
row of the file, in file order, with a fresh 0-based index, so that a later message can
point at "data row 17". Text is read as text: CSV/TSV fields are strings, and "NA" or
"null" stay strings rather than becoming missing values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trainer.config import DataConfig, FileSource, HubSource
from trainer.data.synthetic import generate
from trainer.errors import DataError

FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class RawSplit:
    """One split as read: every row in source order, 0-based RangeIndex.

    ``origin`` names the split in messages (a file path, or a hub split); ``hint`` is
    appended to a missing-column message where a likely fix is known.
    """

    frame: pd.DataFrame
    origin: str
    hint: str = ""


def read_splits(data: DataConfig) -> dict[str, RawSplit]:
    """Return ``train``, ``dev`` and, where the source has one, ``test``."""
    if data.name is not None:
        return {
            split: RawSplit(generate(data.name, split), f"the {data.name} {split} split")
            for split in ("train", "dev", "test")
        }
    if data.hub is not None:
        return _read_hub(data.hub)
    assert data.files is not None
    return _read_files(data.files)


# -- Hugging Face Hub -----------------------------------------------------------------


def _read_hub(hub: HubSource) -> dict[str, RawSplit]:
    """Load with ``datasets.load_dataset`` and map our split names to the hub's.

    Integer labels of a ``ClassLabel`` feature are replaced by their names, so GLUE SST-2
    gives ``label_names == ["negative", "positive"]`` rather than ``["0", "1"]``, and the
    names are what a report shows. Label ids then follow the usual rule (sorted names),
    which may differ from the hub's own ids. ``-1``, the hub's "no label" (GLUE test
    splits), becomes a missing label, which validation reports.
    """
    import datasets  # heavy; only hub users pay for it

    label = f"{hub.path!r}" + (f" (config {hub.name!r})" if hub.name else "")
    for needed in ("train", "dev"):
        if needed not in hub.splits:
            raise DataError(
                f"The 'data.hub.splits' parameter must map {needed!r} to a split of {label}. "
                f"Got {hub.splits} instead."
            )
    try:
        loaded = datasets.load_dataset(
            hub.path, hub.name, data_files=hub.data_files, revision=hub.revision
        )
    except Exception as exc:  # offline, unknown name, bad files: all end the same way
        raise DataError(
            f"Could not load the hub dataset {label}: {type(exc).__name__}: {exc}. Without "
            "network access, set HF_HUB_OFFLINE=1 to use a copy already in the datasets "
            "cache, or point 'data.files' at local files instead of 'data.hub'."
        ) from exc
    raw = {}
    for ours, theirs in hub.splits.items():
        if theirs not in loaded:
            raise DataError(
                f"The 'data.hub.splits.{ours}' parameter must name a split of {label}: "
                f"{sorted(loaded)}. Got {theirs!r} instead."
            )
        split = loaded[theirs]
        frame = split.to_pandas()
        for column, feature in split.features.items():
            if isinstance(feature, datasets.ClassLabel):
                names = dict(enumerate(feature.names))
                frame[column] = frame[column].map(names).astype(object)
        raw[ours] = RawSplit(frame, f"the {theirs!r} split of hub dataset {label}")
    return raw


# -- local files ----------------------------------------------------------------------


def _read_files(files: FileSource) -> dict[str, RawSplit]:
    paths = {"train": files.train, "dev": files.dev, "test": files.test}
    paths = {split: path for split, path in paths.items() if path is not None}
    # Every file is checked before any is read: a typo in `test` should not wait for a
    # large train file to parse.
    for split, path in paths.items():
        for file in _column_files(path, files) if files.format == "lines" else [path]:
            if not Path(file).is_file():
                raise DataError(f"The 'data.files.{split}' file does not exist: {file}.")
    raw = {}
    for split, path in paths.items():
        if files.format == "lines":
            raw[split] = RawSplit(_read_lines(path, files), str(path))
            continue
        layout = files.per_split.get(split)
        header = layout.header if layout else files.header
        columns = layout.columns if layout else files.columns
        fmt = _file_format(path, files.format, split)
        hint = (
            " If the file has no header line, set 'data.files.header: false' and name the "
            "columns in 'data.files.columns'."
            if header and fmt in ("csv", "tsv")
            else ""
        )
        raw[split] = RawSplit(_read_table(path, fmt, header, columns), str(path), hint)
    return raw


def _file_format(path: Path, declared: str, split: str) -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"The format of the 'data.files.{split}' file {path} cannot be told from its "
            f"extension {path.suffix!r}: known extensions are {sorted(FORMATS_BY_SUFFIX)}. "
            "Set 'data.files.format' to one of 'csv', 'tsv', 'jsonl', 'parquet', 'lines'."
        )
    return fmt


def _read_table(path: Path, fmt: str, header: bool, columns: list[str] | None) -> pd.DataFrame:
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "jsonl":
            return pd.read_json(
                path, lines=True, dtype=False, convert_dates=False, encoding="utf-8-sig"
            )
        frame = pd.read_csv(
            path,
            sep="\t" if fmt == "tsv" else ",",
            # GLUE TSVs (MRPC) hold bare quote characters inside fields: no quoting.
            quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,  # "NA", "null", "" stay text; validation judges them
            skip_blank_lines=False,  # a blank line is an empty row, not a silent skip
            encoding="utf-8-sig",  # MRPC's header starts with a byte-order mark
        )
    except pd.errors.EmptyDataError:  # not even a header line
        return pd.DataFrame(columns=columns or [])
    except (ValueError, OSError) as exc:  # parse errors, bad encoding, unreadable file
        raise DataError(f"Could not read {path} as {fmt.upper()}: {exc}") from exc
    if not header:
        if frame.shape[1] != len(columns or []):
            raise DataError(
                f"The 'data.files.columns' parameter must name every field of {path}, "
                f"which has {frame.shape[1]} a row. Got {len(columns or [])}: {columns} "
                "instead."
            )
        frame.columns = columns
    return frame


def _column_files(path: Path, files: FileSource) -> list[str]:
    return [str(path).replace("{column}", column) for column in files.columns or []]


def _read_lines(path: Path, files: FileSource) -> pd.DataFrame:
    """One value a line, one file a column (SentEval): line i of every file is row i."""
    values = {}
    for column, file in zip(files.columns or [], _column_files(path, files), strict=True):
        try:
            text = Path(file).read_text(encoding="utf-8-sig")
        except (ValueError, OSError) as exc:
            raise DataError(f"Could not read {file} as text: {exc}") from exc
        lines = text.split("\n")
        if lines[-1] == "":  # the newline that ends the last line
            lines.pop()
        values[column] = [line.removesuffix("\r") for line in lines]
    counts = {
        file: len(v) for file, v in zip(_column_files(path, files), values.values(), strict=True)
    }
    if len(set(counts.values())) > 1:
        raise DataError(
            f"The files of one split must have one line per row each. Got {counts} instead."
        )
    return pd.DataFrame(values, dtype=object)
