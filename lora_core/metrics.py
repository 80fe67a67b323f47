"""Classification metrics and the plot data DVC draws: pure maths on logits, no files (the
training loop imports it; plots.py draws the PNGs)."""

from __future__ import annotations

import numpy as np

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
