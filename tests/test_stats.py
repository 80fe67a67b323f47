"""Bootstrap intervals and McNemar's exact test: exact numbers on fixed inputs."""

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

from lora_core import stats
from lora_core.stats import (
    bootstrap_intervals,
    class_count,
    flips,
    mcnemar_exact,
    paired_bootstrap_p,
)

LABELS = np.array([1, 0] * 50)  # (100,)
PREDICTED = np.where(np.arange(100) % 10 == 0, 1 - LABELS, LABELS)  # 90 right: acc 0.9
LABELS3 = np.arange(60) % 3  # (60,)
PREDICTED3 = np.where(np.arange(60) % 5 == 0, (LABELS3 + 1) % 3, LABELS3)  # 48 right: acc 0.8
# 4 classes, class 3 once in the labels and once predicted: some resamples lack it
LABELS4 = np.array([0, 1, 2] * 13 + [3])  # (40,)
PREDICTED4 = np.where(np.arange(40) % 4 == 0, (LABELS4 + 1) % 3, LABELS4)  # 3 only at 39


def test_bootstrap_interval_of_a_fixed_prediction_file_is_exact_and_repeatable():
    intervals = bootstrap_intervals(PREDICTED, LABELS, resamples=2000, classes=2)
    assert intervals == bootstrap_intervals(PREDICTED, LABELS, resamples=2000, classes=2)
    rounded = {k: tuple(round(v, 6) for v in pair) for k, pair in intervals.items()}
    assert rounded == {
        "accuracy": (0.83975, 0.95),
        "f1": (0.811575, 0.951225),
        "macro_f1": (0.830215, 0.949995),
    }
    # the point estimates (accuracy, F1, macro-F1 all 0.9) lie inside
    assert all(low < 0.9 < high for low, high in intervals.values())


def test_bootstrap_intervals_of_three_classes_are_exact():
    intervals = bootstrap_intervals(PREDICTED3, LABELS3, resamples=1200, classes=3)
    rounded = {k: tuple(round(v, 6) for v in pair) for k, pair in intervals.items()}
    assert rounded == {"accuracy": (0.7, 0.9), "macro_f1": (0.687594, 0.893929)}
    assert intervals == bootstrap_intervals(PREDICTED3, LABELS3, resamples=1200, classes=3)


def _macro(labels, predicted) -> float:
    return f1_score(labels, predicted, average="macro", zero_division=0)


@pytest.mark.parametrize(
    ("predicted", "labels", "classes"),
    [(PREDICTED4, LABELS4, 4), (PREDICTED3, LABELS3, 3), (PREDICTED, LABELS, 2)],
)
def test_resampled_scores_equal_sklearn_on_each_resample(predicted, labels, classes):
    idx = next(stats._resamples(len(labels), 12))  # (12, n): the bootstrap's first resamples
    scores = stats._scores(predicted[idx], labels[idx], classes)
    y, p = labels[idx], predicted[idx]
    assert scores["macro_f1"].tolist() == [_macro(a, b) for a, b in zip(y, p)]
    assert scores["accuracy"].tolist() == [accuracy_score(a, b) for a, b in zip(y, p)]
    if classes == 2:
        assert scores["f1"].tolist() == [f1_score(a, b, zero_division=0) for a, b in zip(y, p)]
    else:
        assert "f1" not in scores
    if classes == 4:  # sklearn's macro-F1 averages the classes that occur: so does ours
        assert 0 < (y == 3).any(axis=1).sum() < 12


def test_paired_bootstrap_p_of_three_classes():
    assert paired_bootstrap_p(PREDICTED3, PREDICTED3, LABELS3, 1000, classes=3) == 1.0
    assert paired_bootstrap_p(PREDICTED3, LABELS3, LABELS3, 1000, classes=3) == 0.0  # all fixed
    worse = np.where(np.arange(60) % 30 == 1, (LABELS3 + 2) % 3, PREDICTED3)  # 2 more wrong
    idx = next(stats._resamples(60, 400))  # the same (400, 60) resamples, scored by sklearn
    diff = [_macro(LABELS3[i], worse[i]) - _macro(LABELS3[i], PREDICTED3[i]) for i in idx]
    expected = 2 * min(sum(d <= 0 for d in diff), sum(d >= 0 for d in diff)) / 400
    assert paired_bootstrap_p(PREDICTED3, worse, LABELS3, 400, classes=3) == expected == 0.23
    assert class_count(LABELS3, worse) == 3 and class_count(np.array([0, 0])) == 2


@pytest.mark.parametrize(("fixed", "broken"), [(0, 0), (2, 8), (8, 2), (5, 5), (0, 8), (30, 45)])
def test_mcnemar_exact_equals_a_two_sided_binomial_test(fixed, broken):
    expected = 1.0 if fixed + broken == 0 else binomtest(fixed, fixed + broken, 0.5).pvalue
    assert mcnemar_exact(fixed, broken) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_textbook_value():
    assert mcnemar_exact(2, 8) == 0.109375  # 2 * (1 + 10 + 45) / 2**10


def test_flips_count_each_way():
    labels = np.array([1, 1, 0, 0])
    assert flips(np.array([1, 0, 1, 0]), np.array([0, 1, 0, 0]), labels) == (2, 1)
