"""Read the configured data source into one raw DataFrame per split.

Nothing here judges the rows (that is ``validation``): a reader only has to return every
row of the file, in file order, with a fresh 0-based index, so that a later message can
point at "data row 17". Text is read as text: CSV/TSV fields are strings, and "NA" or
"null" stay strings rather than becoming missing values.

A file that cannot be read as its format says (a byte its encoding cannot decode, a row
with more fields than the header, a line that is not JSON, a Parquet file that is not) is a
one-line ``DataError`` naming the file and the row, never a parser's traceback.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trainer.data.synthetic import generate
from trainer.data_config import DataConfig, FileSource, HubSource
from trainer.errors import DataError
from trainer.messages import parameter_message

# How every message counts rows: the index pandas gives a file, the position in a hub split.
ROW = "data row {} (counted from 0, header line not counted)"

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
    """Return ``train``, ``dev`` and, where the source has them, ``test`` and the extra
    evaluation splits."""
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
                parameter_message(
                    "data.hub.splits", f"must map {needed!r} to a split of {label}", hub.splits
                )
            )
    try:
        loaded = datasets.load_dataset(
            hub.path, hub.name, data_files=hub.data_files, revision=hub.revision
        )
    except Exception as exc:  # offline, unknown name, bad files: all end the same way
        raise DataError(
            f"Could not load the hub dataset {label}: {type(exc).__name__}: {exc}. "
            + _offline_advice()
        ) from exc
    raw = {}
    for ours, theirs in {**hub.splits, **(hub.eval or {})}.items():
        if theirs not in loaded:
            raise DataError(
                parameter_message(
                    f"data.hub.{'eval' if ours in (hub.eval or {}) else 'splits'}.{ours}",
                    f"must name a split of {label}: {sorted(loaded)}",
                    theirs,
                )
            )
        split = loaded[theirs]
        frame = split.to_pandas()
        for column, feature in split.features.items():
            if isinstance(feature, datasets.ClassLabel):
                names = dict(enumerate(feature.names))
                frame[column] = frame[column].map(names).astype(object)
            elif isinstance(getattr(feature, "feature", None), datasets.ClassLabel):
                # a sequence of class labels (CoNLL-2003's ner_tags): a list of tag names
                names = dict(enumerate(feature.feature.names))
                frame[column] = [[names[int(i)] for i in row] for row in frame[column]]
            elif isinstance(feature, (datasets.Sequence, list)):
                frame[column] = [list(row) for row in frame[column]]  # arrays to lists
        raw[ours] = RawSplit(frame, f"the {theirs!r} split of hub dataset {label}")
    return raw


# -- local files ----------------------------------------------------------------------


def _offline_advice() -> str:
    """What to try next when a hub dataset did not load: HF_HUB_OFFLINE=1 only helps a
    user who has not set it already; one who has lacks the cached copy."""
    import os

    local = "point 'data.files' at local files instead of 'data.hub'."
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return (
            "HF_HUB_OFFLINE is set and the datasets cache holds no copy of it: load it once "
            "on a machine with network access (the same HF_HOME), or " + local
        )
    return (
        "Without network access, set HF_HUB_OFFLINE=1 to use a copy already in the "
        "datasets cache, or " + local
    )


def _file_key(split: str) -> str:
    """The key a split's file is given under: ``data.files.dev``, ``data.files.eval.de``."""
    own = split in ("train", "dev", "test")
    return f"data.files.{split}" if own else f"data.files.eval.{split}"


def _read_files(files: FileSource) -> dict[str, RawSplit]:
    paths = files.paths()
    # Every file is checked before any is read: a typo in `test` should not wait for a
    # large train file to parse.
    for split, path in paths.items():
        for file in _column_files(path, files) if files.format == "lines" else [str(path)]:
            _check_file(Path(file), _file_key(split))
    raw = {}
    for split, path in paths.items():
        if files.format == "lines":
            raw[split] = RawSplit(_read_lines(path, files, _file_key(split)), str(path))
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
        frame = _read_table(path, fmt, header, columns, files.encoding, _file_key(split))
        raw[split] = RawSplit(frame, str(path), hint)
    return raw


def _check_file(path: Path, key: str) -> None:
    """A path that is not a readable file ends here, named by its key, not in a reader."""
    if path.is_dir():
        raise DataError(parameter_message(key, "must name a file, not a directory", str(path)))
    if not path.exists():
        raise DataError(parameter_message(key, "must name a file that exists", str(path)))
    if not path.is_file():
        raise DataError(parameter_message(key, "must name a regular file", str(path)))


def _file_format(path: Path, declared: str, split: str) -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"The format of the '{_file_key(split)}' file {path} cannot be told from its "
            f"extension {path.suffix!r}: known extensions are {sorted(FORMATS_BY_SUFFIX)}. "
            "Set 'data.files.format' to one of 'csv', 'tsv', 'jsonl', 'parquet', 'lines'."
        )
    return fmt


def _read_table(
    path: Path, fmt: str, header: bool, columns: list[str] | None, encoding: str, key: str
) -> pd.DataFrame:
    if fmt == "parquet":
        return _read_parquet(path)
    text = _read_text(path, encoding, key, fmt, header)
    if fmt == "jsonl":
        return _parse_jsonl(text, path)
    if fmt == "conll":
        return _parse_conll(text, path, columns or [])
    # a headerless file naming more columns than its first row has, as many as its widest
    # row: later rows carry optional trailing fields (the STS Benchmark's sources), read
    # under those names; one name too many is refused below, like one too few
    names = None
    if not header and columns:
        widths = _widths(text, fmt)
        names = columns if widths[0] < len(columns) == max(widths) else None
    frame = _parse_delimited(text, path, fmt, header, names)
    if frame is None:  # not even a header line: no rows, which validation reports
        return pd.DataFrame(columns=columns or [])
    if not header:
        if frame.shape[1] != len(columns or []):
            raise DataError(
                parameter_message(
                    "data.files.columns",
                    f"must name every field of {path}, which has {frame.shape[1]} a row",
                    columns,
                )
            )
        frame.columns = columns
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise
    except Exception as exc:  # pyarrow's errors (ArrowInvalid, ...): all mean "not readable"
        problem = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(exc))
        raise DataError(
            f"The file {path} must be a Parquet file, as its extension or 'data.files.format' "
            f"says. Got a file pyarrow cannot read instead: {_one_line(problem).rstrip('.')}."
        ) from None


def _widths(text: str, fmt: str) -> list[int]:
    """The number of fields of each line of a delimited file, read as it is parsed."""
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    rows = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",", quoting=quoting)
    return [len(row) for row in rows] or [0]


def _parse_delimited(
    text: str, path: Path, fmt: str, header: bool, names: list[str] | None = None
) -> pd.DataFrame | None:
    """CSV/TSV as strings, every row kept, field counts checked.

    pandas guesses silently when a row has more fields than the header: if it is the
    first row, the extra field becomes the index and every column shifts by one. Here
    ``index_col=False`` turns the guess into a warning, and the warning into an error
    naming the row.
    """
    sep = "\t" if fmt == "tsv" else ","
    # GLUE TSVs (MRPC) hold bare quote characters inside fields: no quoting.
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    if header:
        _check_header_names(text, path, sep, quoting)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                io.StringIO(text),
                sep=sep,
                quoting=quoting,
                header=0 if header else None,
                names=names,
                index_col=False,
                dtype=str,
                keep_default_na=False,  # "NA", "null", "" stay text; validation judges them
                skip_blank_lines=False,  # a blank line is an empty row, not a silent skip
            )
    except pd.errors.EmptyDataError:
        return None
    except pd.errors.ParserWarning:
        record = _first_long_record(text, sep, quoting)
        raise DataError(_field_count_message(path, fmt, header, record)) from None
    except pd.errors.ParserError as exc:
        message = str(exc)
        counts = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        quote = re.search(r"EOF inside string starting at row (\d+)", message)
        if counts:
            expected, line, saw = (int(g) for g in counts.groups())
            record = (line - 1, expected, saw)  # pandas counts lines (records) from 1
            raise DataError(_field_count_message(path, fmt, header, record)) from None
        if quote:
            at = _row_words(int(quote.group(1)), header)
            raise DataError(
                f"The file {path} must close every quoted field. Got a quote that is never "
                f"closed at {at} instead. A quote character inside a quoted field is "
                'written twice ("").'
            ) from None
        raise DataError(f"Could not read {path} as {fmt.upper()}: {_one_line(message)}") from None


def _check_header_names(text: str, path: Path, sep: str, quoting: int) -> None:
    """pandas renames a repeated column name ('text', 'text.1'), so 'data.text' would read
    the first of two columns without a word: refuse the file instead."""
    try:
        names = next(csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting), [])
    except csv.Error:  # pandas' own parse will say what is wrong
        return
    for i, name in enumerate(names):
        if name in names[:i]:
            raise DataError(
                f"The header line of {path} must name each column once. Got {name!r} twice instead."
            )


def _first_long_record(text: str, sep: str, quoting: int) -> tuple[int, int, int]:
    """(record index, fields of the first record, fields of the first longer record)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting)
    expected = -1
    for index, fields in enumerate(reader):
        if expected < 0:
            expected = len(fields)
        elif len(fields) > expected:
            return index, expected, len(fields)
    return 1, expected, expected + 1  # not found by csv: point at the first data row


def _field_count_message(path: Path, fmt: str, header: bool, record: tuple[int, int, int]) -> str:
    index, expected, saw = record
    first = "its header line" if header else "its first row"
    fix = (
        "TSV files are read without quoting, so a field cannot hold a tab."
        if fmt == "tsv"
        else 'A field that holds a comma must be quoted ("a, b").'
    )
    return (
        f"The file {path} must have {expected} fields in every row, as {first} has. Got "
        f"{saw} fields at {_row_words(index, header)} instead. {fix}"
    )


def _row_words(record: int, header: bool) -> str:
    """A 0-based record index of a CSV/TSV file (header line included) in ROW's words."""
    row = record - 1 if header else record
    return "the header line" if row < 0 else ROW.format(row)


def _parse_jsonl(text: str, path: Path) -> pd.DataFrame:
    """JSON Lines, one object a line; blank lines are skipped (as pandas does).

    Parsed here rather than by ``pd.read_json``, whose message for a bad line is "Expected
    object or value" (or a position in the whole file) and names no line.
    """
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        at = f"line {number}, {ROW.format(len(records))},"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            array = " (the file holds a JSON array, not JSON Lines)" if line.strip() == "[" else ""
            raise DataError(
                f"The file {path} must hold one JSON object a line (JSON Lines). Got invalid "
                f"JSON ({exc.msg}, column {exc.colno}){array} at {at} instead."
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"The file {path} must hold one JSON object a line (JSON Lines). Got a JSON "
                f"{type(record).__name__} at {at} instead."
            )
        records.append(record)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _parse_conll(text: str, path: Path, columns: list[str]) -> pd.DataFrame:
    """CoNLL-style columns: a word a line, its fields split on whitespace and named by
    ``columns`` (CoNLL-2003: token, POS, tag), a blank line between sentences
    (``-DOCSTART-`` lines skipped). One row per sentence, each column a list."""
    sentences: list[list[list[str]]] = []
    current: list[list[str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
                current = []
            continue
        if len(fields) != len(columns):
            raise DataError(
                f"The file {path} must have {len(columns)} fields on every word's line, as "
                f"'data.files.columns' names them ({columns}). Got {len(fields)} at line "
                f"{number} (sentence {len(sentences)}, counted from 0) instead."
            )
        current.append(fields)
    if current:
        sentences.append(current)
    return pd.DataFrame(
        {name: [[word[i] for word in s] for s in sentences] for i, name in enumerate(columns)}
    )


def _column_files(path: Path, files: FileSource) -> list[str]:
    return [str(path).replace("{column}", column) for column in files.columns or []]


def _read_lines(path: Path, files: FileSource, key: str) -> pd.DataFrame:
    """One value a line, one file a column (SentEval): line i of every file is row i."""
    values = {}
    for column, file in zip(files.columns or [], _column_files(path, files), strict=True):
        text = _read_text(Path(file), files.encoding, key, "lines", False)
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


# -- bytes to text --------------------------------------------------------------------

_COMPRESSED = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zip": "zip"}


def _read_text(path: Path, encoding: str, key: str, fmt: str, header: bool) -> str:
    """The file's text in ``encoding``; a byte the encoding cannot decode is a one-line
    DataError naming the file, the byte offset, the line and (where lines are rows) the
    data row, with the likely ``data.files.encoding``.

    The bytes are decoded here, not by pandas: pandas decodes in chunks and reports a
    position inside its chunk, not in the file. Compressed files (by extension, as pandas
    infers them) are decompressed first.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(
            parameter_message(key, f"must name a readable file ({exc.strerror})", str(path))
        ) from None
    kind = _COMPRESSED.get(path.suffix.lower())
    if kind is not None:
        data = _decompress(data, kind, path)
    skip = 0
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") and data.startswith(codecs.BOM_UTF8):
        skip = len(codecs.BOM_UTF8)  # so offsets count from the file's first byte
    try:
        text = data[skip:].decode("utf-8" if skip else encoding)
    except UnicodeDecodeError as exc:
        message = _decode_message(data, skip + exc.start, encoding, path, fmt, header, kind)
        raise DataError(message) from None
    return text.removeprefix("\ufeff")


def _decompress(data: bytes, kind: str, path: Path) -> bytes:
    try:
        if kind == "gzip":
            return gzip.decompress(data)
        if kind == "bzip2":
            return bz2.decompress(data)
        if kind == "xz":
            return lzma.decompress(data)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise DataError(
                    f"The zip file {path} must hold exactly one file. Got {names} instead."
                )
            return archive.read(names[0])
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"The file {path} must be {kind}-compressed, as its extension says. Got data "
            f"that does not decompress instead: {_one_line(str(exc))}."
        ) from None


def _decode_message(
    data: bytes, offset: int, encoding: str, path: Path, fmt: str, header: bool, kind: str | None
) -> str:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_index = data.count(b"\n", 0, line_start)  # 0-based
    place = f"on line {line_index + 1}"
    row = _row_of_line(data, line_start, line_index, fmt, header)
    if row is not None:
        place += ", the header line," if row < 0 else f", {ROW.format(row)},"
    default = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    name = "UTF-8" if default else repr(encoding)
    of = " of the decompressed data" if kind else ""
    return (
        f"The file {path} must be text in {name} ('data.files.encoding'). Got byte "
        f"0x{data[offset]:02x}, which {name} cannot decode, at byte offset {offset}{of} "
        f"{place} instead. {_encoding_hint(data)}"
    )


def _row_of_line(
    data: bytes, line_start: int, line_index: int, fmt: str, header: bool
) -> int | None:
    """The data row a line holds, where lines and rows correspond; None where they may not
    (a CSV with quotes before the line: a quoted field may span lines)."""
    if fmt == "lines":
        return line_index
    if fmt == "jsonl":  # blank lines are skipped, not rows
        return sum(1 for line in data[:line_start].split(b"\n") if line.strip())
    if fmt == "csv" and b'"' in data[:line_start]:
        return None
    return line_index - 1 if header else line_index


def _encoding_hint(data: bytes) -> str:
    """The fix most likely to work, from what the bytes look like."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "The file starts with a UTF-16 byte-order mark: set 'data.files.encoding: utf-16'."
    if data.startswith(b"PAR1"):
        return "The file looks like Parquet: set 'data.files.format: parquet'."
    if data.startswith(b"\x1f\x8b"):
        return "The file is gzip-compressed: give it a .gz extension (or decompress it)."
    if any(0x80 <= b <= 0x9F for b in data):  # C1 controls in Latin-1, printable in cp1252
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            pass
        else:
            return "If it was saved on Windows, set 'data.files.encoding: cp1252'."
    return "If the file is Latin-1 (ISO-8859-1), set 'data.files.encoding: latin-1'."


def _one_line(text: str) -> str:
    return " ".join(text.split())
