"""PNG plots: what each figure draws (its axes, legend, labels), and reproducible bytes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lora_core import plots
from lora_core.metrics import confusion_points, roc_auc, roc_points
from lora_core.plots import plot_confusion, plot_roc, plot_training, save_figure

# 6 examples: predictions (argmax) 1,1,0,0,1,0 against labels 1,0,0,1,1,0
LOGITS = np.array([[0, 2], [0, 1], [3, 0], [1, 0], [0, 4], [2, 0]], dtype=np.float32)
LABELS = np.array([1, 0, 0, 1, 1, 0])


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, instead of PNGs."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda plt, fig, path: figures.append(fig))
    yield figures
    for fig in figures:
        plt.close(fig)


def test_confusion_plot_of_five_long_names_slants_them_on_a_larger_figure(drawn):
    names = tuple(f"class number {i} of five" for i in range(5))
    labels = np.arange(25) % 5
    points = confusion_points(np.eye(5)[(labels + (labels == 4)) % 5], labels, names)
    plot_confusion(points, names, "confusion.png")
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(names)
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {40.0}
    assert tuple(drawn[0].get_size_inches()) == pytest.approx((6.0, 5.5))
    assert ax.images[0].get_array()[4].tolist() == [5, 0, 0, 0, 0]  # class 4 read as 0
    plot_confusion(confusion_points(LOGITS, LABELS, ("no", "yes")), ("no", "yes"), "c.png")
    assert {t.get_rotation() for t in drawn[1].axes[0].get_xticklabels()} == {0.0}


def test_confusion_plot_of_many_classes_is_a_heat_map_without_counts_or_names(drawn):
    k = plots.MAX_NAMED_CLASSES + 1
    names = tuple(f"id {i}" for i in range(k))
    labels = np.arange(2 * k) % k
    plot_confusion(confusion_points(np.eye(k)[labels], labels, names), names, "confusion.png")
    (ax,) = drawn[0].axes
    assert len(ax.texts) == 0 and list(ax.get_xticks()) == list(ax.get_yticks()) == []
    assert ax.get_title() == f"Test confusion matrix ({k} classes)"
    assert tuple(drawn[0].get_size_inches()) == pytest.approx((8.0, 7.0))
    assert np.trace(ax.images[0].get_array()) == 2 * k


def test_class_names_are_drawn_as_plain_text_not_mathtext(tmp_path):
    names = ("$x^$", "a_b$")  # unbalanced mathtext: parsing it would raise
    labels = np.array([0, 1, 1])
    plot_confusion(confusion_points(np.eye(2)[labels], labels, names), names, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


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
