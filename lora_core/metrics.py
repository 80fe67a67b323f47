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


def accuracy_of(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The share of right predictions along the last axis: the one definition of accuracy
    that evaluate, the bootstrap (over (resamples, n) blocks) and training's val check use."""
    return (predicted == labels).mean(-1)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the argmax of ``logits`` (n, classes) against ``labels`` (n,)."""
    return float(accuracy_of(logits.argmax(axis=1), labels))


def mean_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of ``logits`` (n, classes) against ``labels`` (n,), in float64: the
    one definition that evaluate and training's val loss use."""
    probs = softmax(logits)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-300, None))))


def per_class(labels: np.ndarray, predicted: np.ndarray, names) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class by name (0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    ids = list(range(len(names)))
    columns = precision_recall_fscore_support(
        labels, predicted, labels=ids, average=None, zero_division=0
    )
    return {
        name: {
            **{k: round(float(v), DIGITS) for k, v in zip(("precision", "recall", "f1"), row)},
            "support": int(row[3]),
        }
        for name, row in zip(names, zip(*columns))
    }


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | None = None
) -> dict:
    """Accuracy, macro-F1, MCC, mean cross-entropy, examples and ``per_class`` scores by
    label name (``names`` in class-id order; default "0", "1", ...). With two classes also
    F1, precision and recall of class 1, as before N classes. Macro-F1 is sklearn's: the
    mean F1 over the classes that occur in ``labels`` or the predictions."""
    from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

    names = names or tuple(str(i) for i in range(logits.shape[1]))
    predicted = logits.argmax(axis=1)
    loss = mean_loss(logits, labels)
    values = {"accuracy": accuracy_of(predicted, labels)}
    if len(names) == 2:
        values["f1"] = f1_score(labels, predicted, zero_division=0)
        values["precision"] = precision_score(labels, predicted, zero_division=0)
        values["recall"] = recall_score(labels, predicted, zero_division=0)
    values["macro_f1"] = f1_score(labels, predicted, average="macro", zero_division=0)
    values["mcc"] = matthews_corrcoef(labels, predicted)
    values["loss"] = loss
    scores = {k: round(float(v), DIGITS) for k, v in values.items()}
    return {**scores, "examples": len(labels), "per_class": per_class(labels, predicted, names)}


def confusion_points(logits: np.ndarray, labels: np.ndarray, names) -> list[dict]:
    """One {actual, predicted} row per example, for DVC's confusion template."""
    predicted = logits.argmax(axis=1)
    return [{"actual": names[a], "predicted": names[p]} for a, p in zip(labels, predicted)]


def ranked(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) pairs that the ROC and precision-recall curves rank: with two
    classes, each example's P(class 1); past two, every (example, class) pair one-vs-rest,
    pooled into one curve (the micro-average)."""
    probs = softmax(logits)
    if probs.shape[1] == 2:
        return labels, probs[:, 1]
    return (labels[:, None] == np.arange(probs.shape[1])).ravel().astype(np.int64), probs.ravel()


def roc_points(logits: np.ndarray, labels: np.ndarray) -> list[dict]:
    """The ROC curve (``ranked``'s) as {fpr, tpr} points, for DVC's plots."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(*ranked(logits, labels))
    return [
        {"fpr": round(float(f), DIGITS), "tpr": round(float(t), DIGITS)} for f, t in zip(fpr, tpr)
    ]


def roc_auc(logits: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (``ranked``'s): the chance that a random positive scores
    above a random negative, ties counting half; nan without both positives and negatives."""
    from sklearn.metrics import roc_auc_score

    positive, score = ranked(logits, labels)
    if len(np.unique(positive)) < 2:
        return float("nan")
    return float(roc_auc_score(positive, score))


def pr_points(logits: np.ndarray, labels: np.ndarray) -> list[dict]:
    """The precision-recall curve (``ranked``'s) as {recall, precision} points."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(*ranked(logits, labels))
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
    """The test confusion matrix by label name. Past two classes the figure grows with the
    classes and the predicted names slant, so that five long-ish names stay readable."""
    plt, fig, ax = figure()
    k, index = len(names), {name: i for i, name in enumerate(names)}
    matrix = np.zeros((k, k), dtype=int)
    for p in points:
        matrix[index[p["actual"]], index[p["predicted"]]] += 1
    ax.imshow(matrix, cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        color = "white" if n > matrix.max() / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names)
    ax.set(xlabel="predicted", ylabel="actual", title="Test confusion matrix")
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
