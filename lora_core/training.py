"""The training run as one function: the train stage and the GPU benchmark both call it.

Tokenized splits in; the classifier with LoRA, its attention on the device, the loop with
its checkpoints and DVCLive log, and the staged outputs (adapter, metrics/train.json,
metrics/train/) out, all at once, or none. Under torchrun every process calls it; rank 0
alone writes and logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from lora_core.checkpoint import checkpoint_folder, checkpointing, finish
from lora_core.config import Params
from lora_core.device import resolve_device, resolve_precision, use_attention
from lora_core.distributed import joined
from lora_core.files import staged
from lora_core.live import TrainLog, live_folder
from lora_core.loop import TrainResult, train_model
from lora_core.model import classifier_for_training
from lora_core.pretrained import BASE_DIR
from lora_core.tokens import TokenizedSplit, load_tokenized, read_task
from lora_core.train_outputs import (
    best_epoch_line,
    checkpoint_line,
    reserve_training,
    write_training,
)


@dataclass
class Trained:
    """What a training run did (``result``) and where: device, precision, attention; and
    whether this process is rank 0, which wrote the outputs."""

    result: TrainResult
    device: torch.device
    precision: str
    attention: str
    main: bool = True

    def lines(self) -> list[str]:
        """What the train stage prints when done: rank 0's two lines, none elsewhere."""
        if not self.main:
            return []
        return [checkpoint_line(self.result), best_epoch_line(self.result, self.precision)]


def train_adapter(
    params: Params,
    tokenized: str | Path,
    models: str | Path,
    metrics: str | Path,
    script: str | Path,
    progress: bool = True,
    base_dir: str | Path = BASE_DIR,
    splits: Mapping[str, TokenizedSplit] | None = None,
    live: bool = True,
) -> Trained:
    """Train on ``tokenized``'s train split, keep the best epoch by val accuracy, and write
    the adapter into ``models`` and the training metrics into ``metrics``.

    ``script`` (the caller's file) is part of the checkpoint's code fingerprint. A benchmark
    passes ``splits`` (its cut of train and val) and ``live=False`` (no DVCLive, whose
    folder is then left empty).
    """
    task = read_task(tokenized)
    splits = splits or {name: load_tokenized(tokenized, name) for name in ("train", "val")}
    train, val = splits["train"], splits["val"]
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.train.precision, device)
    folder = checkpoint_folder(models)  # models/checkpoint, persist: true in dvc.yaml
    with joined(device) as world:
        model = classifier_for_training(params, base_dir, labels=task.labels)
        attention = use_attention(model, params.model.attention, device)
        ckpt = checkpointing(folder, params, tokenized, script, model, world, len(train))

        def run(log: TrainLog | None = None) -> TrainResult:
            return train_model(
                model,
                train,
                val,
                params.train,
                device,
                precision,
                eval_batch_size=params.evaluate.batch_size,
                progress=progress,
                world=world,
                checkpoints=ckpt,
                log=log,
            )

        if not world.main:  # rank 0 alone writes and logs
            return Trained(run(), device, precision, attention, main=False)
        with staged() as out:  # all outputs appear together, after training, or none do
            paths = reserve_training(out, models, metrics)
            log = TrainLog(live_folder(metrics), params) if live else None  # while it trains
            result = run(log)
            write_training(paths, params, task, model, result, device, precision, attention, log)
        finish(folder)  # a later run (dvc repro --force) starts fresh
    return Trained(result, device, precision, attention)
