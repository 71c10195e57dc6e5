"""Each task's metrics, from kept libraries, keyed by the names configs use.

Classification: accuracy, macro-F1, Matthews correlation (scikit-learn). Regression:
Pearson's and Spearman's correlations (scipy) and their mean, the score GLUE reports for
STS-B. Token classification: entity-level micro F1 by seqeval's standard definition
(CoNLL's: an entity counts when its type and its whole span are right) and the share of
words tagged right. The first name of each task is its default primary metric.

Torch-free: the config, the spec and the analysis read the names, and the seed
ensembles score their members' saved outputs with the same functions.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "classification_metrics",
    "regression_metrics",
    "score",
    "task_of_outputs",
    "token_metrics",
]

# Each task's metrics, its default primary metric first.
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1", "mcc"),
    "regression": ("pearson_spearman", "pearson", "spearman"),
    "token_classification": ("entity_f1", "token_accuracy"),
}
METRIC_NAMES: frozenset[str] = frozenset(name for names in METRICS.values() for name in names)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and Matthews correlation of argmax predictions.

    A diverged model has NaN or infinite logits, and its metrics still enter the
    statistics (dropping the seed would flatter the strategy). The argmax of a NaN is
    arbitrary (numpy returns the first NaN), so non-finite logits are first mapped with
    ``np.nan_to_num`` (NaN -> 0, ±inf -> the largest finite floats): a finite logit
    beats a NaN, and a row of NaNs predicts class 0.
    """
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    predictions = np.nan_to_num(logits).argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
    }


def regression_metrics(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Pearson's and Spearman's correlations of the predicted scores with the labels, and
    their mean. A constant prediction (a collapsed or diverged model: non-finite outputs
    count as 0) has no correlation to speak of and scores 0, not NaN, so the seed still
    enters the statistics as the failure it is."""
    from scipy.stats import pearsonr, spearmanr

    raw = np.asarray(outputs, dtype=np.float64).reshape(len(labels), -1)[:, 0]
    scores = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    labels = np.asarray(labels, dtype=np.float64)
    if np.ptp(scores) == 0 or np.ptp(labels) == 0:
        pearson = spearman = 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a near-constant input: a small correlation
            pearson = float(np.nan_to_num(pearsonr(scores, labels).statistic))
            spearman = float(np.nan_to_num(spearmanr(scores, labels).statistic))
    return {
        "pearson_spearman": (pearson + spearman) / 2,
        "pearson": pearson,
        "spearman": spearman,
    }


def token_metrics(
    logits: np.ndarray, labels: np.ndarray, offsets: np.ndarray, label_names: Sequence[str]
) -> dict[str, float]:
    """Entity-level micro F1 (seqeval, CoNLL's definition) and word accuracy of the argmax
    tags. ``logits`` and ``labels`` hold one row per scored word (each word's first
    sub-word), sentences back to back; sentence i is ``offsets[i]:offsets[i+1]``."""
    from seqeval.metrics import f1_score

    predicted = np.nan_to_num(logits).argmax(axis=-1)
    names = np.asarray(list(label_names))
    bounds = list(itertools.pairwise(offsets))
    gold = [names[labels[a:b]].tolist() for a, b in bounds]
    guess = [names[predicted[a:b]].tolist() for a, b in bounds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on a tag scheme it reads as IOB1
        f1 = float(f1_score(gold, guess, average="micro", zero_division=0))
    return {"entity_f1": f1, "token_accuracy": float((predicted == labels).mean())}


def task_of_outputs(outputs: np.ndarray, offsets: np.ndarray | None) -> str:
    """The task saved outputs belong to: words with sentence offsets are tags, one column
    is a score, several are classes."""
    if offsets is not None:
        return "token_classification"
    return "regression" if outputs.ndim == 2 and outputs.shape[1] == 1 else "classification"


def score(
    outputs: np.ndarray,
    labels: np.ndarray,
    offsets: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """The metrics of a model's outputs (logits or scores) on one split, whatever its task."""
    task = task_of_outputs(outputs, offsets)
    if task == "token_classification":
        assert offsets is not None and label_names is not None
        return token_metrics(outputs, labels, offsets, label_names)
    if task == "regression":
        return regression_metrics(outputs, labels)
    return classification_metrics(outputs, labels)
