"""Bootstrap intervals and McNemar's exact test: exact numbers on fixed inputs."""

import numpy as np
import pytest
from scipy.stats import binomtest

from lora_core.stats import bootstrap_intervals, flips, mcnemar_exact, read_predictions

LABELS = np.array([1, 0] * 50)  # (100,)
PREDICTED = np.where(np.arange(100) % 10 == 0, 1 - LABELS, LABELS)  # 90 right: acc 0.9


def test_bootstrap_interval_of_a_fixed_prediction_file_is_exact_and_repeatable():
    intervals = bootstrap_intervals(PREDICTED, LABELS, resamples=2000)
    assert intervals == bootstrap_intervals(PREDICTED, LABELS, resamples=2000)
    assert set(intervals) == {"accuracy", "f1"}
    rounded = {k: tuple(round(v, 6) for v in pair) for k, pair in intervals.items()}
    assert rounded == {"accuracy": (0.83975, 0.95), "f1": (0.811575, 0.951225)}
    # the point estimates (accuracy 0.9, F1 0.9) lie inside
    assert all(low < 0.9 < high for low, high in intervals.values())


@pytest.mark.parametrize(("fixed", "broken"), [(0, 0), (2, 8), (8, 2), (5, 5), (0, 8), (30, 45)])
def test_mcnemar_exact_equals_a_two_sided_binomial_test(fixed, broken):
    expected = 1.0 if fixed + broken == 0 else binomtest(fixed, fixed + broken, 0.5).pvalue
    assert mcnemar_exact(fixed, broken) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_textbook_value():
    assert mcnemar_exact(2, 8) == 0.109375  # 2 * (1 + 10 + 45) / 2**10


def test_flips_count_each_way():
    labels = np.array([1, 1, 0, 0])
    assert flips(np.array([1, 0, 1, 0]), np.array([0, 1, 0, 0]), labels) == (2, 1)


def test_read_predictions_round_trip_and_damage():
    labels, predicted = read_predictions(
        "index,label,predicted,probability\n0,1,0,0.2\n1,0,0,0.1\n"
    )
    assert labels.tolist() == [1, 0] and predicted.tolist() == [0, 0]
    with pytest.raises(ValueError):
        read_predictions("index,label\n0,1\n")
    with pytest.raises(ValueError):
        read_predictions("index,label,predicted,probability\n1,1,0,0.2\n")
