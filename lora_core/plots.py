"""PNG plots of evaluate's metrics (confusion matrix, ROC, precision-recall, training curves)
and the figure helpers `lora-sst2 report` shares; never imported by train."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lora_core.files import atomic_path

# Past this many classes the confusion matrix is a heat map alone: no count in each cell,
# no class names on the axes, and a figure that stops growing.
MAX_NAMED_CLASSES = 30


def figure():
    """A fresh 5x4 inch figure on the Agg backend: (pyplot, figure, axes). Text is drawn as
    given: a class name like ``$x^$`` is not parsed as mathtext (which could raise)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    return plt, fig, ax


def save_figure(plt, fig, path: str | Path) -> None:
    """Write the figure as PNG atomically and close it, cropped to what it draws: a label
    that reaches past the figure's edge widens the image instead of being cut."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # No software tag: the PNG does not change with the matplotlib version.
        fig.savefig(tmp, format="png", metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(points: list[dict], names, path: str | Path) -> None:
    """The test confusion matrix by label name. Past two classes the figure grows with the
    classes and the predicted names slant, so that five long-ish names stay readable; past
    MAX_NAMED_CLASSES it is a fixed-size heat map without counts or names."""
    plt, fig, ax = figure()
    k, index = len(names), {name: i for i, name in enumerate(names)}
    matrix = np.zeros((k, k), dtype=int)
    for p in points:
        matrix[index[p["actual"]], index[p["predicted"]]] += 1
    ax.imshow(matrix, cmap="Blues")
    ax.set(xlabel="predicted", ylabel="actual", title="Test confusion matrix")
    if k > MAX_NAMED_CLASSES:
        ax.set(xticks=[], yticks=[], title=f"Test confusion matrix ({k} classes)")
        fig.set_size_inches(8.0, 7.0)
        save_figure(plt, fig, path)
        return
    for (i, j), n in np.ndenumerate(matrix):
        color = "white" if n > matrix.max() / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names)
    if k > 2:
        fig.set_size_inches(max(5.0, 1.5 + 0.9 * k), max(4.0, 1.5 + 0.8 * k))
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    save_figure(plt, fig, path)


def plot_curve(points: list[dict], x: str, y: str, title: str, path: str | Path) -> None:
    """One curve through ``points``, ``y`` against ``x``."""
    plt, fig, ax = figure()
    ax.plot([p[x] for p in points], [p[y] for p in points])
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.grid(alpha=0.3)
    save_figure(plt, fig, path)


def plot_roc(points: list[dict], auc: float, title: str, path: str | Path) -> None:
    """The ROC curve with its AUC in the legend, against chance (the diagonal, AUC 0.5)."""
    plt, fig, ax = figure()
    ax.plot([p["fpr"] for p in points], [p["tpr"] for p in points], label=f"ROC, AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance, AUC 0.5")
    ax.set(xlabel="fpr", ylabel="tpr", title=title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    save_figure(plt, fig, path)


def plot_training(curve: list[dict], val: list[dict], path: str | Path) -> None:
    """Train loss per logged step (left axis) and val accuracy per epoch (right axis), with
    one legend for both under the plot, where it hides no point."""
    plt, fig, ax = figure()
    ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], color="C0", label="train loss")
    ax.set(xlabel="step", ylabel="train loss", title="Training")
    twin = ax.twinx()
    steps, accuracy = [p["step"] for p in val], [p["val_accuracy"] for p in val]
    twin.plot(steps, accuracy, "o-", color="C1", label="val accuracy (end of epoch)")
    twin.set_ylabel("val accuracy", color="C1")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(
        lines,
        [line.get_label() for line in lines],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        ncol=2,
        frameon=False,
    )
    save_figure(plt, fig, path)
