"""Tokenise each dataset once and keep the result on disk for every later trial.

A sweep runs the same (tokenizer, data, max_length) dozens of times; tokenising is
cheap next to training but not free, and it should never differ between trials. The
cache key hashes the tokenizer's full serialised definition, the data fingerprint and
``max_length``, so any change to one of them misses the cache instead of reusing
stale ids. Files are written to a temporary name and renamed, so concurrent trials
on one node race harmlessly.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data import TextSplits

__all__ = ["TokenizedSplit", "tokenize_splits"]

_CACHE_FORMAT = 2  # 2: the task's labels (scores, per-token tags)

IGNORED = -100  # the label of a token that no loss or metric reads (torch's ignore_index)


@dataclass(frozen=True)
class TokenizedSplit:
    """Ragged token ids stored flat: example i is ``input_ids[offsets[i]:offsets[i+1]]``.

    ``labels`` holds a class id (int64) or a score (float32) per example, or, for token
    classification (``per_token``), a tag id per token aligned with ``input_ids``: the tag
    of each word on its first sub-word and :data:`IGNORED` on every other token (the
    other sub-words, the special tokens), as transformers' ``run_ner.py`` does.
    """

    input_ids: np.ndarray  # int32, concatenated
    token_type_ids: np.ndarray  # int8, concatenated, aligned with input_ids
    offsets: np.ndarray  # int64, len n + 1
    labels: np.ndarray  # len n, or len input_ids when per_token
    per_token: bool = False

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def targets(self) -> np.ndarray:
        """What a metric scores against: the label per example, or per scored word (each
        word's first sub-word; a word cut by ``max_length`` is not scored)."""
        return self.labels[self.labels != IGNORED] if self.per_token else self.labels

    @property
    def target_offsets(self) -> np.ndarray | None:
        """Sentence boundaries in :attr:`targets` (None unless ``per_token``): sentence i's
        words are ``targets[target_offsets[i]:target_offsets[i + 1]]``."""
        if not self.per_token:
            return None
        scored = np.concatenate([[0], np.cumsum(self.labels != IGNORED)])
        return scored[self.offsets]


def _tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        definition = backend.to_str()
    else:  # a slow tokenizer: its vocabulary and class define it
        definition = json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items())])
    return hashlib.sha256(definition.encode()).hexdigest()


def _word_labels(encoded, tags: list[list[int]]) -> list[list[int]]:
    """Each word's tag on its first sub-word, IGNORED elsewhere (``word_ids``)."""
    out = []
    for i, sentence in enumerate(tags):
        previous, row = None, []
        for word in encoded.word_ids(i):
            row.append(IGNORED if word is None or word == previous else sentence[word])
            previous = word
        out.append(row)
    return out


def _encode(frame, tokenizer, max_length: int, has_pair: bool, task: str) -> TokenizedSplit:
    texts = frame["text"].tolist()
    pairs = frame["text_pair"].tolist() if has_pair else None
    per_token = task == "token_classification"
    encoded = tokenizer(
        texts,
        pairs,
        truncation=True,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=True,
        is_split_into_words=per_token,
    )
    ids = encoded["input_ids"]
    types = encoded.get("token_type_ids") or [[0] * len(x) for x in ids]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if per_token:
        rows = _word_labels(encoded, frame["label"].tolist())
        labels = np.fromiter((t for x in rows for t in x), dtype=np.int64, count=offsets[-1])
    elif task == "regression":
        labels = frame["label"].to_numpy(dtype=np.float32)
    else:
        labels = frame["label"].to_numpy(dtype=np.int64)
    return TokenizedSplit(
        input_ids=np.fromiter((t for x in ids for t in x), dtype=np.int32, count=offsets[-1]),
        token_type_ids=np.fromiter((t for x in types for t in x), dtype=np.int8, count=offsets[-1]),
        offsets=offsets,
        labels=labels,
        per_token=per_token,
    )


def _save(path: Path, splits: dict[str, TokenizedSplit]) -> None:
    arrays = {
        f"{name}.{field}": np.asarray(getattr(split, field))
        for name, split in splits.items()
        for field in ("input_ids", "token_type_ids", "offsets", "labels", "per_token")
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> dict[str, TokenizedSplit]:
    with np.load(path, allow_pickle=False) as archive:
        names = sorted({key.split(".")[0] for key in archive.files})
        return {
            name: TokenizedSplit(
                input_ids=archive[f"{name}.input_ids"],
                token_type_ids=archive[f"{name}.token_type_ids"],
                offsets=archive[f"{name}.offsets"],
                labels=archive[f"{name}.labels"],
                per_token=bool(archive[f"{name}.per_token"]),
            )
            for name in names
        }


def tokenize_splits(
    splits: TextSplits, tokenizer, max_length: int, cache_dir: Path
) -> tuple[dict[str, TokenizedSplit], bool]:
    """Tokenise train/dev/(test), reading or filling the on-disk cache.

    Returns the splits by name and whether the cache was hit.
    """
    key = hashlib.sha256(
        json.dumps(
            [
                _CACHE_FORMAT,
                _tokenizer_digest(tokenizer),
                splits.fingerprint,
                max_length,
                splits.task,
            ]
        ).encode()
    ).hexdigest()[:32]
    path = Path(cache_dir) / "tokens" / f"{key}.npz"
    if path.is_file():
        return _load(path), True
    frames = {"train": splits.train, **splits.evaluated()}
    encoded = {
        name: _encode(frame, tokenizer, max_length, splits.has_pair, splits.task)
        for name, frame in frames.items()
    }
    _save(path, encoded)
    return encoded, False
