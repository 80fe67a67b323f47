"""What the train and evaluate stages write: adapter, metrics JSON, curves and plots.

Each stage's outputs are staged (``files.staged``) and appear together or not at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from lora_core import metrics as m
from lora_core.adapter import CONFIG, WEIGHTS, AdapterConfig, write_adapter
from lora_core.config import Params
from lora_core.errors import LoraSst2Error
from lora_core.files import Staged, json_text, remove_temporaries
from lora_core.inject import count_parameters
from lora_core.live import histories, read_tsv
from lora_core.runtime import hardware
from lora_core.stats import PREDICTION_COLUMNS, PREDICTIONS, bootstrap_intervals
from lora_core.tokens import Task

if TYPE_CHECKING:  # a type only: evaluate must not import the training loop
    from lora_core.live import TrainLog
    from lora_core.loop import TrainResult

CURVES = "train"  # metrics/train/: the finished run's DVCLive folder (live.py)


def train_metrics(
    params: Params,
    model: nn.Module,
    result: TrainResult,
    device,
    precision: str,
    attention: str,
    adapter_bytes: int,
) -> dict:
    """metrics/train.json: sizes and outcome first, then the run's timing (machine-dependent)."""
    trainable, total = count_parameters(model)
    return {
        "mode": params.train.mode,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100 * trainable / total, 4),
        "adapter_bytes": adapter_bytes,
        "epochs": params.train.epochs,
        "best_epoch": result.best_epoch,
        "best_val_accuracy": round(max(result.val_accuracy), 6),
        "device": device.type,
        "precision": precision,
        "attention": attention,
        **hardware(device),
        "processes": result.processes,
        "train_examples_seen": result.examples,
        "train_seconds": round(result.train_seconds, 1),
        "examples_per_second": round(result.examples / result.train_seconds, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
    }


def best_epoch_line(result: TrainResult, precision: str) -> str:
    """What train prints last: the kept epoch's val accuracy, as the loop measured it (in
    ``precision``, LoRA unmerged); evaluate's metrics/eval.json scores val again, merged."""
    return (
        f"best epoch {result.best_epoch}: val accuracy {max(result.val_accuracy):.4f} "
        f"({precision}, during training; evaluate's metrics/eval.json scores the merged "
        "model in evaluate.precision)"
    )


def checkpoint_line(result: TrainResult) -> str:
    """What the checkpoints of this run cost, beside the training time."""
    share = 100 * result.checkpoint_seconds / max(result.train_seconds, 1e-9)
    return (
        f"checkpoints: {result.checkpoints} written in {result.checkpoint_seconds:.2f} s "
        f"({share:.2f}% of the training time)"
    )


def reserve_training(out: Staged, models_dir: str | Path, metrics_dir: str | Path) -> dict:
    """Temporary paths for every train output, made before training so that an output
    folder that cannot be written fails at once, not after hours of training. Temporaries a
    killed run left there go first."""
    models, metrics = Path(models_dir), Path(metrics_dir)
    for folder in (models, metrics):  # what a killed run (SIGKILL) left
        remove_temporaries(folder)
    names = [models / WEIGHTS, models / CONFIG, metrics / "train.json"]
    return {path.name: out.file(path) for path in names} | {CURVES: out.folder(metrics / CURVES)}


def write_training(
    paths: dict,
    params: Params,
    task: Task,
    model: nn.Module,
    result: TrainResult,
    device,
    precision: str,
    attention: str,
    log: TrainLog,
) -> None:
    """Fill the paths ``reserve_training`` made: adapter, metrics/train.json, and
    metrics/train/, a copy of the live DVCLive folder with the final metrics logged."""
    write_adapter(
        paths[WEIGHTS], paths[CONFIG], result.best_state, AdapterConfig.from_params(params, task)
    )
    size = paths[WEIGHTS].stat().st_size
    summary = train_metrics(params, model, result, device, precision, attention, size)
    paths["train.json"].write_text(json_text(summary), encoding="utf-8")
    log.finish(summary)
    shutil.copytree(log.folder, paths[CURVES], dirs_exist_ok=True)


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
    m.plot_confusion(confusion, names, plots / "confusion.png")
    roc, pr = m.roc_points(logits, labels), m.pr_points(logits, labels)
    for name, points in (("roc", roc), ("pr", pr)):
        (plots / f"{name}.json").write_text(json_text(points), encoding="utf-8")
    pooled = "" if len(names) == 2 else ", one-vs-rest, micro-averaged"
    title = f"ROC (test{pooled}), accuracy {accuracy:.4f}"
    m.plot_roc(roc, m.roc_auc(logits, labels), title, plots / "roc.png")
    pr_title = f"Precision-recall (test{pooled})"
    m.plot_curve(pr, "recall", "precision", pr_title, plots / "pr.png")


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
        m.plot_training(read_tsv(loss, "loss"), rows, plots / "training.png")
    predictions = out.file(metrics_dir / PREDICTIONS)
    predictions.write_text(predictions_csv(logits, labels), encoding="utf-8")
    out.file(metrics_dir / "eval.json").write_text(json_text(scores), encoding="utf-8")
    return scores
