"""Classification metrics, plot data for DVC, and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lora_core.files import atomic_path

DIGITS = 6  # metrics and plot points are rounded so files stay small and diff cleanly


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, F1, precision, recall, MCC (positive class = 1) and mean cross-entropy."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
    )

    predicted = logits.argmax(axis=1)
    probs = softmax(logits)
    loss = -np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-300, None)))
    values = {
        "accuracy": accuracy_score(labels, predicted),
        "f1": f1_score(labels, predicted, zero_division=0),
        "precision": precision_score(labels, predicted, zero_division=0),
        "recall": recall_score(labels, predicted, zero_division=0),
        "mcc": matthews_corrcoef(labels, predicted),
        "loss": loss,
        "examples": len(labels),
    }
    return {k: (v if k == "examples" else round(float(v), DIGITS)) for k, v in values.items()}


def confusion_points(logits: np.ndarray, labels: np.ndarray, names) -> list[dict]:
    """One {actual, predicted} row per example, for DVC's confusion template."""
    predicted = logits.argmax(axis=1)
    return [{"actual": names[a], "predicted": names[p]} for a, p in zip(labels, predicted)]


def roc_points(logits: np.ndarray, labels: np.ndarray) -> list[dict]:
    """The ROC curve of P(positive) as {fpr, tpr} points, for DVC's plots."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, softmax(logits)[:, 1])
    return [
        {"fpr": round(float(f), DIGITS), "tpr": round(float(t), DIGITS)} for f, t in zip(fpr, tpr)
    ]


def roc_auc(logits: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of P(positive): the chance that a random positive example
    scores above a random negative one, ties counting half; nan without both classes."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, softmax(logits)[:, 1]))


def pr_points(logits: np.ndarray, labels: np.ndarray) -> list[dict]:
    """The precision-recall curve of P(positive) as {recall, precision} points."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, softmax(logits)[:, 1])
    return [
        {"recall": round(float(r), DIGITS), "precision": round(float(p), DIGITS)}
        for r, p in zip(recall, precision)
    ]


def figure():
    """A fresh 5x4 inch figure on the Agg backend: (pyplot, figure, axes)."""
    import matplotlib

    matplotlib.use("Agg")
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
    plt, fig, ax = figure()
    matrix = np.zeros((len(names), len(names)), dtype=int)
    for p in points:
        matrix[names.index(p["actual"]), names.index(p["predicted"])] += 1
    ax.imshow(matrix, cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        color = "white" if n > matrix.max() / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names)
    ax.set(xlabel="predicted", ylabel="actual", title="Test confusion matrix")
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
