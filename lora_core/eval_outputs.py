"""What the evaluate stage writes: metrics/eval.json (with bootstrap intervals), the plots
folder and the per-example predictions files (test and val), staged (``files.staged``) so
that they appear together or not at all. The scores and the predictions format are
scores.py's, which the baseline stage shares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lora_core import metrics as m
from lora_core.errors import LoraSst2Error
from lora_core.files import Staged, json_text
from lora_core.live import CURVES, histories, read_tsv
from lora_core.plots import plot_confusion, plot_curve, plot_roc, plot_training
from lora_core.scores import PREDICTIONS, VAL_PREDICTIONS, predictions_csv, scores_with_intervals


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
    """metrics/eval.json, per-example test and val predictions and the plots folder (replaced
    whole), from (logits, labels) per split; ``names`` are the label names in class-id order."""
    logits, labels = results["test"]
    if logits.shape[1] != len(names):
        raise LoraSst2Error(
            f"the model scores {logits.shape[1]} classes but its adapter names {len(names)} "
            f"labels ({', '.join(names)}): run `dvc repro --force train`"
        )
    scores = {"val": m.classification_metrics(*results["val"], names)}
    scores["test"] = scores_with_intervals(logits, labels, resamples, names)
    plots, metrics_dir = out.folder(plots_dir), Path(metrics_dir)
    write_plots(plots, logits, labels, names, scores["test"]["accuracy"])
    curves = histories(metrics_dir / CURVES)
    loss, val = curves / "train/loss.tsv", curves / "val/accuracy.tsv"
    if loss.exists() and val.exists():
        rows = [
            {"step": r["step"], "val_accuracy": r["accuracy"]} for r in read_tsv(val, "accuracy")
        ]
        plot_training(read_tsv(loss, "loss"), rows, plots / "training.png")
    for name, path in (("test", PREDICTIONS), ("val", VAL_PREDICTIONS)):
        out.file(metrics_dir / path).write_text(predictions_csv(*results[name]), encoding="utf-8")
    out.file(metrics_dir / "eval.json").write_text(json_text(scores), encoding="utf-8")
    return scores
