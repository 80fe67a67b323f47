"""What the train stage writes: the adapter, metrics/train.json and metrics/train/ (the
finished run's DVCLive folder), staged (``files.staged``) so that they appear together or not
at all; and the lines train prints. Nothing of evaluate's (no plots, no bootstrap).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from lora_core.adapter import write_adapter
from lora_core.adapter_config import CONFIG, WEIGHTS, AdapterConfig
from lora_core.config import Params
from lora_core.device import hardware
from lora_core.files import Staged, json_text, remove_temporaries
from lora_core.inject import count_parameters
from lora_core.live import CURVES
from lora_core.tokens import Task

if TYPE_CHECKING:  # types only: the loop's result and the log are made by the caller
    from lora_core.live import TrainLog
    from lora_core.loop import TrainResult


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
    log: TrainLog | None,
) -> None:
    """Fill the paths ``reserve_training`` made: adapter, metrics/train.json, and
    metrics/train/, a copy of the live DVCLive folder with the final metrics logged."""
    write_adapter(
        paths[WEIGHTS], paths[CONFIG], result.best_state, AdapterConfig.from_params(params, task)
    )
    size = paths[WEIGHTS].stat().st_size
    summary = train_metrics(params, model, result, device, precision, attention, size)
    paths["train.json"].write_text(json_text(summary), encoding="utf-8")
    if log is not None:  # a benchmark's run has no DVCLive log: metrics/train/ stays empty
        log.finish(summary)
        shutil.copytree(log.folder, paths[CURVES], dirs_exist_ok=True)
