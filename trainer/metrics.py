"""Classification metrics, from scikit-learn, keyed by the names configs use."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

__all__ = ["METRIC_NAMES", "classification_metrics"]

METRIC_NAMES = ("accuracy", "macro_f1", "mcc")


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and Matthews correlation of argmax predictions."""
    predictions = logits.argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
    }
