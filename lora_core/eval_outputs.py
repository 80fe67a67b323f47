"""What the evaluate stage writes: metrics/eval.json (with bootstrap intervals), the plots
folder and the per-example predictions file, staged (``files.staged``) so that they appear
together or not at all. The predictions format (written here, read back by the gate) lives
here alone.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from lora_core import metrics as m
from lora_core.errors import LoraSst2Error
from lora_core.files import Staged, json_text
from lora_core.live import CURVES, histories, read_tsv
from lora_core.plots import plot_confusion, plot_curve, plot_roc, plot_training
from lora_core.stats import bootstrap_intervals

PREDICTIONS = "predictions/test.csv"  # under metrics/: in git, so the gate can pair commits
PREDICTION_COLUMNS = ("index", "label", "predicted", "probability")


def predictions_csv(logits: np.ndarray, labels: np.ndarray) -> str:
    """One row per example, in the split's order: index, label, predicted (class ids) and
    a probability: P(class 1) with two classes (as before N classes), else the predicted
    class's probability."""
    probs, predicted = m.softmax(logits), logits.argmax(axis=1)
    probability = probs[:, 1] if logits.shape[1] == 2 else probs[np.arange(len(probs)), predicted]
    rows = [
        f"{i},{y},{p},{q:.6f}" for i, (y, p, q) in enumerate(zip(labels, predicted, probability))
    ]
    return "\n".join([",".join(PREDICTION_COLUMNS), *rows]) + "\n"


def read_predictions(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predicted) from ``predictions_csv``'s text; a damaged file is a ValueError."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != PREDICTION_COLUMNS:
        raise ValueError("not a predictions file")
    try:
        if [int(r["index"]) for r in rows] != list(range(len(rows))):
            raise ValueError("indices are not 0..n-1")
        return tuple(np.array([int(r[c]) for r in rows]) for c in ("label", "predicted"))
    except (TypeError, KeyError):  # a row cut short: DictReader fills it with None
        raise ValueError("a row is cut short") from None


def test_scores(
    logits: np.ndarray, labels: np.ndarray, resamples: int, names: tuple[str, ...]
) -> dict:
    """Test metrics plus 95% bootstrap intervals of accuracy and macro-F1, and of F1 with two
    classes (seeded: same bytes)."""
    scores = m.classification_metrics(logits, labels, names)
    intervals = bootstrap_intervals(logits.argmax(axis=1), labels, resamples, len(names))
    for name, (low, high) in intervals.items():
        scores[f"{name}_ci95_low"] = round(low, m.DIGITS)
        scores[f"{name}_ci95_high"] = round(high, m.DIGITS)
    return scores


def write_plots(
    plots: Path, logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...], accuracy: float
) -> None:
    """The test confusion matrix by label name, the ROC and the precision-recall curves (json
    and png): of P(class 1) with two classes, one-vs-rest and micro-averaged past two."""
    confusion = m.confusion_points(logits, labels, names)
    (plots / "confusion.json").write_text(json_text(confusion), encoding="utf-8")
    plot_confusion(confusion, names, plots / "confusion.png")
    roc, pr = m.roc_points(logits, labels), m.pr_points(logits, labels)
    for name, points in (("roc", roc), ("pr", pr)):
        (plots / f"{name}.json").write_text(json_text(points), encoding="utf-8")
    pooled = "" if len(names) == 2 else ", one-vs-rest, micro-averaged"
    title = f"ROC (test{pooled}), accuracy {accuracy:.4f}"
    plot_roc(roc, m.roc_auc(logits, labels), title, plots / "roc.png")
    pr_title = f"Precision-recall (test{pooled})"
    plot_curve(pr, "recall", "precision", pr_title, plots / "pr.png")


def write_evaluation(
    out: Staged,
    results: dict[str, tuple[np.ndarray, np.ndarray]],
    metrics_dir: str | Path,
    plots_dir: str | Path,
    resamples: int,
    names: tuple[str, ...],
) -> dict:
    """metrics/eval.json, per-example test predictions and the plots folder (replaced whole),
    from (logits, labels) per split; ``names`` are the label names in class-id order."""
    logits, labels = results["test"]
    if logits.shape[1] != len(names):
        raise LoraSst2Error(
            f"the model scores {logits.shape[1]} classes but its adapter names {len(names)} "
            f"labels ({', '.join(names)}): run `dvc repro --force train`"
        )
    scores = {"val": m.classification_metrics(*results["val"], names)}
    scores["test"] = test_scores(logits, labels, resamples, names)
    plots, metrics_dir = out.folder(plots_dir), Path(metrics_dir)
    write_plots(plots, logits, labels, names, scores["test"]["accuracy"])
    curves = histories(metrics_dir / CURVES)
    loss, val = curves / "train/loss.tsv", curves / "val/accuracy.tsv"
    if loss.exists() and val.exists():
        rows = [
            {"step": r["step"], "val_accuracy": r["accuracy"]} for r in read_tsv(val, "accuracy")
        ]
        plot_training(read_tsv(loss, "loss"), rows, plots / "training.png")
    predictions = out.file(metrics_dir / PREDICTIONS)
    predictions.write_text(predictions_csv(logits, labels), encoding="utf-8")
    out.file(metrics_dir / "eval.json").write_text(json_text(scores), encoding="utf-8")
    return scores
