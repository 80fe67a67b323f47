"""Classification metrics and plot points: exact numbers on crafted logits."""

import numpy as np
import pytest

from lora_core.metrics import classification_metrics, confusion_points, roc_points, softmax

# 6 examples: predictions (argmax) 1,1,0,0,1,0 against labels 1,0,0,1,1,0
LOGITS = np.array([[0, 2], [0, 1], [3, 0], [1, 0], [0, 4], [2, 0]], dtype=np.float32)
LABELS = np.array([1, 0, 0, 1, 1, 0])


def test_softmax_rows_sum_to_one_and_are_stable():
    probs = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]], rtol=0, atol=1e-12)


def test_classification_metrics_exact():
    scores = classification_metrics(LOGITS, LABELS)
    assert set(scores) == {"accuracy", "f1", "precision", "recall", "mcc", "loss", "examples"}
    # tp 2, fp 1, fn 1, tn 2
    assert scores["accuracy"] == round(4 / 6, 6)
    assert scores["precision"] == scores["recall"] == scores["f1"] == round(2 / 3, 6)
    assert scores["mcc"] == round(1 / 3, 6)  # (2*2 - 1*1) / sqrt(3*3*3*3)
    assert scores["examples"] == 6
    expected_loss = -np.mean(np.log(softmax(LOGITS)[np.arange(6), LABELS]))
    assert scores["loss"] == pytest.approx(round(float(expected_loss), 6), abs=1e-6)


def test_confusion_and_roc_points():
    points = confusion_points(LOGITS, LABELS, ("negative", "positive"))
    assert points[1] == {"actual": "negative", "predicted": "positive"}
    assert len(points) == 6
    roc = roc_points(LOGITS, LABELS)
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
