"""Noise: bootstrap intervals over examples and McNemar's exact test on paired predictions."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

BOOTSTRAP_SEED = 0  # fixed: the same predictions give the same interval, byte for byte
PREDICTIONS = "predictions/test.csv"  # under metrics/: in git, so the gate can pair commits
PREDICTION_COLUMNS = ("index", "label", "predicted", "probability")


def _accuracy_f1(predicted: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and F1 (positive class 1) along the last axis."""
    tp = ((predicted == 1) & (labels == 1)).sum(-1)
    fp = ((predicted == 1) & (labels == 0)).sum(-1)
    fn = ((predicted == 0) & (labels == 1)).sum(-1)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    return (predicted == labels).mean(-1), f1


def bootstrap_intervals(
    predicted: np.ndarray, labels: np.ndarray, resamples: int, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of accuracy and F1 over ``resamples`` resamples of the examples."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(labels)
    accuracy, f1 = [], []
    for start in range(0, resamples, 500):  # (500, n) index blocks keep memory small
        idx = rng.integers(0, n, size=(min(500, resamples - start), n))
        a, f = _accuracy_f1(predicted[idx], labels[idx])
        accuracy.append(a)
        f1.append(f)
    tail = (1 - level) / 2 * 100
    return {
        name: tuple(float(v) for v in np.percentile(np.concatenate(values), [tail, 100 - tail]))
        for name, values in (("accuracy", accuracy), ("f1", f1))
    }


def paired_bootstrap_p(
    base: np.ndarray, head: np.ndarray, labels: np.ndarray, resamples: int
) -> float:
    """Two-sided p of "F1 did not change": how often the resampled F1 difference (head -
    base, the same examples for both) lands on either side of zero."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n, below, above = len(labels), 0, 0
    for start in range(0, resamples, 500):
        idx = rng.integers(0, n, size=(min(500, resamples - start), n))
        diff = _accuracy_f1(head[idx], labels[idx])[1] - _accuracy_f1(base[idx], labels[idx])[1]
        below, above = below + int((diff <= 0).sum()), above + int((diff >= 0).sum())
    return min(1.0, 2 * min(below, above) / resamples)


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against Binomial(n, 1/2)."""
    n = fixed + broken
    if n == 0:
        return 1.0
    k = min(fixed, broken)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def flips(base: np.ndarray, head: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(fixed, broken): examples base got wrong and head right, and the other way round."""
    base_right, head_right = base == labels, head == labels
    return int((~base_right & head_right).sum()), int((base_right & ~head_right).sum())


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
