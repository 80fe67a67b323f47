"""Classification metrics and plot points: exact numbers on crafted logits."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import auc

from lora_core import metrics
from lora_core.metrics import (
    classification_metrics,
    confusion_points,
    plot_roc,
    plot_training,
    roc_auc,
    roc_points,
    save_figure,
    softmax,
)

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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, instead of PNGs."""
    figures = []
    monkeypatch.setattr(metrics, "save_figure", lambda plt, fig, path: figures.append(fig))
    yield figures
    for fig in figures:
        plt.close(fig)


def _legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_roc_plot_shows_auc_and_the_chance_diagonal(drawn):
    plot_roc(roc_points(LOGITS, LABELS), roc_auc(LOGITS, LABELS), "ROC (test)", "roc.png")
    (ax,) = drawn[0].axes
    assert _legend(ax) == ["ROC, AUC 0.8889", "chance, AUC 0.5"]
    curve, chance = ax.get_lines()
    assert list(curve.get_xdata()) == [p["fpr"] for p in roc_points(LOGITS, LABELS)]
    assert (list(chance.get_xdata()), list(chance.get_ydata())) == ([0, 1], [0, 1])
    assert ax.get_title() == "ROC (test)"


def test_training_plot_has_one_legend_for_loss_and_val_accuracy(drawn):
    curve = [{"step": 2, "loss": 0.7}, {"step": 4, "loss": 0.5}]
    val = [{"step": 4, "val_accuracy": 0.75}]
    plot_training(curve, val, "training.png")
    ax, twin = drawn[0].axes
    assert _legend(ax) == ["train loss", "val accuracy (end of epoch)"]
    assert twin.get_legend() is None
    assert [list(line.get_ydata()) for line in ax.get_lines() + twin.get_lines()] == [
        [0.7, 0.5],
        [0.75],
    ]


def _saved_with_text_past_the_edge(path) -> bytes:
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    fig.text(0.9, 0.5, "a label that runs past the right edge")
    save_figure(plt, fig, path)
    return path.read_bytes()


def test_save_figure_keeps_a_label_past_the_edge_and_same_bytes(tmp_path):
    png = _saved_with_text_past_the_edge(tmp_path / "a.png")
    assert png == _saved_with_text_past_the_edge(tmp_path / "b.png")  # reproducible bytes
    image = plt.imread(tmp_path / "a.png")
    assert image.shape[1] > 2 * 50  # widened past the 2-inch figure to hold the label
    assert (image[:, -3:, :3] == 1).all()  # and the right edge is margin, not cut text
