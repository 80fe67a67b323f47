"""Noise: bootstrap intervals over examples and paired tests (McNemar, bootstrap), N classes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from lora_core.metrics import accuracy_of

BOOTSTRAP_SEED = 0  # fixed: the same predictions give the same interval, byte for byte


def class_count(*ids: np.ndarray) -> int:
    """The classes that class ids (labels, predictions) imply: the largest id + 1, at least 2."""
    return max([2, *(int(a.max()) + 1 for a in ids if a.size)])


def _f1_per_class(
    predicted: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 along the last axis, (..., n) -> (..., classes), and whether each class
    occurs (in labels or predictions). One bincount of (row, actual, predicted) codes gives
    every row's confusion matrix: memory of one (..., n) block, whatever the classes."""
    rows = predicted.shape[:-1]
    offsets = np.arange(int(np.prod(rows, dtype=int))).reshape(*rows, 1) * classes
    codes = (offsets + labels) * classes + predicted  # (..., n)
    counts = np.bincount(codes.ravel(), minlength=offsets.size * classes**2)
    counts = counts.reshape(*rows, classes, classes)  # (..., actual, predicted)
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    occurs = counts.sum(-1) + counts.sum(-2)  # actual + predicted = 2 tp + fp + fn
    f1 = np.divide(2 * tp, occurs, out=np.zeros(tp.shape), where=occurs > 0)
    return f1, occurs > 0


def _scores(predicted: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Accuracy and macro-F1 (over the classes that occur, as sklearn's) along the last
    axis; with two classes also the F1 of class 1."""
    f1, occurs = _f1_per_class(predicted, labels, classes)
    count = occurs.sum(-1)
    scores = {"accuracy": accuracy_of(predicted, labels)}
    if classes == 2:
        scores["f1"] = f1[..., 1]
    scores["macro_f1"] = np.divide(f1.sum(-1), count, out=np.zeros(count.shape), where=count > 0)
    return scores


def _resamples(n: int, resamples: int) -> Iterator[np.ndarray]:
    """Seeded (500, n) blocks of example indices drawn with replacement: small memory."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for start in range(0, resamples, 500):
        yield rng.integers(0, n, size=(min(500, resamples - start), n))


def bootstrap_intervals(
    predicted: np.ndarray, labels: np.ndarray, resamples: int, classes: int, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of accuracy and macro-F1 (and, with two classes, F1 of class 1)
    over ``resamples`` resamples of the examples."""
    blocks = [_scores(predicted[i], labels[i], classes) for i in _resamples(len(labels), resamples)]
    tail = (1 - level) / 2 * 100
    intervals = {}
    for name in blocks[0]:
        values = np.concatenate([block[name] for block in blocks])  # (resamples,)
        intervals[name] = tuple(float(v) for v in np.percentile(values, [tail, 100 - tail]))
    return intervals


def paired_bootstrap_p(
    base: np.ndarray, head: np.ndarray, labels: np.ndarray, resamples: int, classes: int
) -> float:
    """Two-sided p of "F1 did not change" (F1 of class 1 with two classes, macro-F1 past
    two): how often the resampled difference (head - base, the same examples for both)
    lands on either side of zero."""
    name = "f1" if classes == 2 else "macro_f1"
    below = above = 0
    for i in _resamples(len(labels), resamples):
        y = labels[i]
        diff = _scores(head[i], y, classes)[name] - _scores(base[i], y, classes)[name]
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
