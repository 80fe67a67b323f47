"""Classification metrics and plot points: exact numbers on crafted logits."""

import numpy as np
import pytest
from sklearn.metrics import auc, f1_score, matthews_corrcoef, precision_score, recall_score

from lora_core.metrics import (
    accuracy,
    accuracy_of,
    classification_metrics,
    confusion_points,
    pr_points,
    ranked,
    roc_auc,
    roc_points,
    softmax,
)

# 6 examples: predictions (argmax) 1,1,0,0,1,0 against labels 1,0,0,1,1,0
LOGITS = np.array([[0, 2], [0, 1], [3, 0], [1, 0], [0, 4], [2, 0]], dtype=np.float32)
LABELS = np.array([1, 0, 0, 1, 1, 0])
BINARY_KEYS = {"accuracy", "f1", "precision", "recall", "macro_f1", "mcc", "loss", "examples"}
# 9 examples, 3 classes: predictions 0,0,1,1,1,1,2,0,1 against labels 0,0,0,1,1,1,2,2,2
PREDICTED3 = np.array([0, 0, 1, 1, 1, 1, 2, 0, 1])
LABELS3 = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
LOGITS3 = 2.0 * np.eye(3)[PREDICTED3] - 1.0  # (9, 3): 1 for the predicted class, else -1
NAMES3 = ("negative", "neutral", "positive")


def test_softmax_rows_sum_to_one_and_are_stable():
    probs = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]], rtol=0, atol=1e-12)


def test_classification_metrics_exact():
    scores = classification_metrics(LOGITS, LABELS, ("negative", "positive"))
    assert set(scores) == BINARY_KEYS | {"per_class"}
    # tp 2, fp 1, fn 1, tn 2
    assert scores["accuracy"] == round(4 / 6, 6)
    assert scores["precision"] == scores["recall"] == scores["f1"] == round(2 / 3, 6)
    assert scores["macro_f1"] == round(2 / 3, 6)  # class 0: tp 2, fp 1, fn 1 as well
    assert scores["mcc"] == round(1 / 3, 6)  # (2*2 - 1*1) / sqrt(3*3*3*3)
    assert scores["examples"] == 6
    expected_loss = -np.mean(np.log(softmax(LOGITS)[np.arange(6), LABELS]))
    assert scores["loss"] == pytest.approx(round(float(expected_loss), 6), abs=1e-6)
    same = {"precision": 0.666667, "recall": 0.666667, "f1": 0.666667, "support": 3}
    assert scores["per_class"] == {"negative": same, "positive": same}
    assert set(classification_metrics(LOGITS, LABELS)["per_class"]) == {"0", "1"}  # no names


def test_classification_metrics_three_classes_exact():
    scores = classification_metrics(LOGITS3, LABELS3, NAMES3)
    assert set(scores) == {"accuracy", "macro_f1", "mcc", "loss", "examples", "per_class"}
    assert scores["accuracy"] == round(6 / 9, 6)
    # per class (tp, fp, fn): negative (2, 1, 1), neutral (3, 2, 0), positive (1, 0, 2)
    assert scores["per_class"] == {
        "negative": {"precision": 0.666667, "recall": 0.666667, "f1": 0.666667, "support": 3},
        "neutral": {"precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 3},
        "positive": {"precision": 1.0, "recall": 0.333333, "f1": 0.5, "support": 3},
    }
    assert scores["macro_f1"] == round((2 / 3 + 3 / 4 + 1 / 2) / 3, 6) == 0.638889
    # (correct * n - sum predicted_k * true_k) / sqrt((n^2 - sum p_k^2) (n^2 - sum t_k^2))
    assert scores["mcc"] == round((6 * 9 - (3 + 5 + 1) * 3) / np.sqrt((81 - 35) * (81 - 27)), 6)
    right = np.log(np.exp(1) / (np.exp(1) + 2 * np.exp(-1)))
    wrong = np.log(np.exp(-1) / (np.exp(1) + 2 * np.exp(-1)))
    assert scores["loss"] == round(float(-(6 * right + 3 * wrong) / 9), 6)
    assert scores["examples"] == 9


def test_three_class_scores_agree_with_sklearn():
    scores = classification_metrics(LOGITS3, LABELS3, NAMES3)
    per_class = [scores["per_class"][name] for name in NAMES3]
    for key, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = score(LABELS3, PREDICTED3, average=None)
        assert [c[key] for c in per_class] == [round(float(v), 6) for v in expected]
    assert scores["macro_f1"] == round(f1_score(LABELS3, PREDICTED3, average="macro"), 6)
    assert scores["mcc"] == round(matthews_corrcoef(LABELS3, PREDICTED3), 6)


def test_accuracy_is_one_definition_over_any_leading_axes():
    assert accuracy(LOGITS, LABELS) == 4 / 6 and accuracy(LOGITS3, LABELS3) == 6 / 9
    blocks = np.stack([PREDICTED3, LABELS3, 2 - LABELS3])  # (3, 9): right 6, 9 and 3 times
    assert accuracy_of(blocks, LABELS3).tolist() == [6 / 9, 1.0, 3 / 9]


def test_confusion_and_roc_points():
    points = confusion_points(LOGITS, LABELS, ("negative", "positive"))
    assert points[1] == {"actual": "negative", "predicted": "positive"}
    assert len(points) == 6
    roc = roc_points(LOGITS, LABELS)
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}


def test_roc_auc_exact():
    # P(positive): positives 0.88, 0.27, 0.98 against negatives 0.73, 0.05, 0.12: of the 9
    # pairs, the positive scores higher in 3 + 2 + 3 = 8
    assert roc_auc(LOGITS, LABELS) == pytest.approx(8 / 9, rel=0, abs=1e-12)
    roc = roc_points(LOGITS, LABELS)
    trapezoid = auc([p["fpr"] for p in roc], [p["tpr"] for p in roc])
    assert trapezoid == pytest.approx(8 / 9, rel=0, abs=1e-6)  # the curve's points, rounded
    tied = np.zeros((4, 2), dtype=np.float32)  # every score equal: ties count half
    assert roc_auc(tied, np.array([0, 1, 0, 1])) == 0.5
    assert np.isnan(roc_auc(LOGITS, np.ones(6, dtype=int)))  # one class: no ROC


def test_roc_and_pr_past_two_classes_pool_every_example_and_class():
    # P: example 0 (label 0) [0.7, 0.2, 0.1], example 1 (label 2) [0.5, 0.1, 0.4].
    # Positives 0.7 and 0.4 against negatives 0.2, 0.1, 0.5, 0.1: 0.7 beats all four,
    # 0.4 three of them: 7 of 8 pairs.
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]]))
    labels = np.array([0, 2])
    positive, score = ranked(logits, labels)
    assert positive.tolist() == [1, 0, 0, 0, 0, 1]
    np.testing.assert_allclose(score, [0.7, 0.2, 0.1, 0.5, 0.1, 0.4], rtol=0, atol=1e-12)
    assert roc_auc(logits, labels) == pytest.approx(7 / 8, rel=0, abs=1e-12)
    pr = pr_points(logits, labels)
    assert pr[0] == {"recall": 1.0, "precision": round(2 / 6, 6)}  # everything called positive
    assert pr[-1] == {"recall": 0.0, "precision": 1.0}
