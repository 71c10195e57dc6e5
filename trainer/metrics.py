"""Classification metrics, from scikit-learn, keyed by the names configs use."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

__all__ = ["METRIC_NAMES", "classification_metrics"]

METRIC_NAMES = ("accuracy", "macro_f1", "mcc")


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and Matthews correlation of argmax predictions.

    A diverged model has NaN or infinite logits, and its metrics still enter the
    statistics (dropping the seed would flatter the strategy). The argmax of a NaN is
    arbitrary (numpy returns the first NaN), so non-finite logits are first mapped with
    ``np.nan_to_num`` (NaN -> 0, ±inf -> the largest finite floats): a finite logit
    beats a NaN, and a row of NaNs predicts class 0.
    """
    predictions = np.nan_to_num(logits).argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
    }
