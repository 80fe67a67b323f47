"""The scores and the predictions file that evaluate and the baseline stage share: test
metrics with seeded 95% bootstrap intervals, and the per-example predictions format
(written by both, read back by `lora-sst2 gate` and `lora-sst2 compare`). No torch, no
plots: the baseline stage imports it.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from lora_core import metrics as m
from lora_core.stats import bootstrap_intervals

PREDICTIONS = "predictions/test.csv"  # under metrics/: in git, so the gate can pair commits
VAL_PREDICTIONS = "predictions/val.csv"  # the same for val: `lora-sst2 tune` pairs trials on it
PREDICTION_COLUMNS = ("index", "label", "predicted", "probability")


def predictions_csv(logits: np.ndarray, labels: np.ndarray) -> str:
    """One row per example, in the split's order: index, label, predicted (class ids) and
    a probability: P(class 1) with two classes (as before N classes), else the predicted
    class's probability."""
    probs, predicted = m.softmax(logits), logits.argmax(axis=1)
    probability = probs[:, 1] if logits.shape[1] == 2 else probs[np.arange(len(probs)), predicted]
    rows = [
        f"{i},{y},{p},{q:.6f}" for i, (y, p, q) in enumerate(zip(labels, predicted, probability))
    ]
    return "\n".join([",".join(PREDICTION_COLUMNS), *rows]) + "\n"


def read_predictions(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predicted) from ``predictions_csv``'s text; a damaged file is a ValueError."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != PREDICTION_COLUMNS:
        raise ValueError("not a predictions file")
    try:
        if [int(r["index"]) for r in rows] != list(range(len(rows))):
            raise ValueError("indices are not 0..n-1")
        return tuple(np.array([int(r[c]) for r in rows]) for c in ("label", "predicted"))
    except (TypeError, KeyError):  # a row cut short: DictReader fills it with None
        raise ValueError("a row is cut short") from None


def scores_with_intervals(
    logits: np.ndarray, labels: np.ndarray, resamples: int, names: tuple[str, ...]
) -> dict:
    """Test metrics plus 95% bootstrap intervals of accuracy and macro-F1, and of F1 with two
    classes (seeded: same bytes)."""
    scores = m.classification_metrics(logits, labels, names)
    intervals = bootstrap_intervals(logits.argmax(axis=1), labels, resamples, len(names))
    for name, (low, high) in intervals.items():
        scores[f"{name}_ci95_low"] = round(low, m.DIGITS)
        scores[f"{name}_ci95_high"] = round(high, m.DIGITS)
    return scores
