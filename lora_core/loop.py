"""The training loop: batches in, trained tensors and numbers out; no file I/O."""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from lora_core.batches import bucket_batches, collate, epoch_steps
from lora_core.checkpoint import Checkpoints
from lora_core.config import TrainConfig
from lora_core.device import store_frozen_linears
from lora_core.distributed import World
from lora_core.errors import LoraSst2Error
from lora_core.inference import predict_logits
from lora_core.inject import lora_state_dict
from lora_core.metrics import accuracy, mean_loss
from lora_core.snapshot import capture, restore
from lora_core.step import Step, make_step
from lora_core.tokens import TokenizedSplit

LOG_EVERY = 20  # steps between loss readings: one host sync per window, not per step


class Log(Protocol):
    """Where rank 0 reports training as it goes (``live.TrainLog``: DVCLive)."""

    def window(self, row: dict) -> None: ...

    def epoch(self, epoch: int, step: int, accuracy: float, loss: float) -> None: ...

    def replay(self, result: TrainResult) -> None: ...


@dataclass
class TrainResult:
    """What a training run produced: curves, best epoch and its trainable tensors, speed."""

    curve: list[dict] = field(default_factory=list)  # {step, epoch, loss, lr} per LOG_EVERY
    val_accuracy: list[float] = field(default_factory=list)  # one per epoch
    val_loss: list[float] = field(default_factory=list)  # one per epoch
    epoch_end_steps: list[int] = field(default_factory=list)  # optimizer steps after each epoch
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    train_seconds: float = 0.0
    examples: int = 0  # over all processes
    processes: int = 1
    peak_memory_mb: float = 0.0
    checkpoints: int = 0  # written by this process in this run
    checkpoint_seconds: float = 0.0  # spent capturing and writing them (not in train_seconds)


def _check_finite(losses: torch.Tensor, first_step: int, lr: float) -> list[float]:
    values = losses.cpu().tolist()
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            raise LoraSst2Error(
                f"training diverged: loss is {value} at step {first_step + offset}; "
                f"lower train.lr (now {lr:g}); no adapter or metrics were written"
            )
    return values


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _train_epoch(
    step: Step,
    train: TokenizedSplit,
    cfg: TrainConfig,
    epoch: int,
    steps_per_epoch: int,
    result: TrainResult,
    progress: bool,
    skip: int = 0,
    checkpoints: Checkpoints | None = None,
    log: Log | None = None,
) -> None:
    """One pass over the bucketed batches (the first ``skip`` done before a resume); logs a
    loss mean every LOG_EVERY steps and checkpoints mid-epoch as ``checkpoints`` says.

    Every rank walks the same global batches and computes its share of each.
    """
    step.model.train()
    batches = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, epoch)
    bar = tqdm(batches[skip:], desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress,
               mininterval=1, initial=skip, total=len(batches))  # fmt: skip
    window: list[torch.Tensor] = []
    if skip and checkpoints is not None and checkpoints.resume is not None:
        window = checkpoints.resume.window(step.world.rank, step.device)
    done = (epoch - 1) * steps_per_epoch + skip
    every = checkpoints.every if checkpoints else 0
    start = time.perf_counter()
    for indices in bar:
        part, weight = step.world.share(indices)
        window.append(step(collate(train, part), weight))
        done += 1
        result.examples += len(indices)  # the world's examples
        if len(window) == LOG_EVERY or done % steps_per_epoch == 0:
            reading = _reading(step, window, done, epoch, cfg.lr)
            result.curve.append(reading)
            if log is not None:
                log.window(reading)
            bar.set_postfix(loss=f"{reading['loss']:.4f}", refresh=False)
            window = []
        if every and done % every == 0 and done % steps_per_epoch:  # epoch ends: validated
            result.train_seconds += _seconds_since(start, step.device)
            _checkpoint(step, result, done, checkpoints, window)
            start = time.perf_counter()
    result.train_seconds += _seconds_since(start, step.device)
    result.epoch_end_steps.append(done)


def _reading(step: Step, window: list[torch.Tensor], done: int, epoch: int, lr: float) -> dict:
    """The loss reading that ends at step ``done``: the window's mean over every process."""
    losses = step.world.mean(torch.stack(window).float())
    values = _check_finite(losses, done - len(window) + 1, lr)
    mean = sum(values) / len(values)
    return {"step": done, "epoch": epoch, "loss": mean, "lr": step.scheduler.get_last_lr()[0]}


def _seconds_since(start: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _checkpoint(step: Step, result: TrainResult, done: int, checkpoints, window=()) -> None:
    """Capture the state (every rank: the RNGs and loss windows are gathered); rank 0 saves."""
    if checkpoints is None:
        return
    start = time.perf_counter()
    snapshot = capture(step, result, done, step.world, list(window))
    if step.world.main and checkpoints.save is not None:
        checkpoints.save(snapshot)
        result.checkpoints += 1
    result.checkpoint_seconds += time.perf_counter() - start


def _validate(
    model,
    val: TokenizedSplit,
    eval_batch_size: int,
    step: Step,
    result,
    epoch: int,
    progress: bool,
    log: Log | None = None,
) -> None:
    """Score val after an epoch; keep the trainable tensors when it is the best so far."""
    logits = predict_logits(model, val, eval_batch_size, step.device, step.precision)
    result.val_accuracy.append(accuracy(logits, val.labels))
    result.val_loss.append(mean_loss(logits, val.labels))
    if log is not None:
        end = result.epoch_end_steps[-1]
        log.epoch(epoch, end, result.val_accuracy[-1], result.val_loss[-1])
    if progress:
        speed = result.examples / result.train_seconds
        score = f"val accuracy {result.val_accuracy[-1]:.4f} ({step.precision}, during training)"
        tqdm.write(f"epoch {epoch}: {score}, {speed:.0f} ex/s")
    if result.val_accuracy[-1] > max(result.val_accuracy[:-1], default=-1.0):
        result.best_epoch = epoch
        result.best_state = {k: v.detach().cpu().clone() for k, v in lora_state_dict(model).items()}


def _resume(
    step: Step, result: TrainResult, steps_per_epoch: int, checkpoints, log: Log | None
) -> tuple[int, int]:
    """(first epoch, its steps already done): (1, 0), or where the checkpoint to continue
    stopped, after restoring its state into ``step`` and ``result``."""
    if checkpoints is None or checkpoints.resume is None:
        return 1, 0
    restore(checkpoints.resume, step, result, step.world)
    if log is not None and step.world.main:
        log.replay(result)
    return checkpoints.resume.position(steps_per_epoch)


def train_model(
    model: nn.Module,
    train: TokenizedSplit,
    val: TokenizedSplit,
    cfg: TrainConfig,
    device: torch.device,
    precision: str,
    eval_batch_size: int = 128,
    progress: bool = True,
    world: World | None = None,
    frozen_in_compute_dtype: bool = True,
    checkpoints: Checkpoints | None = None,
    log: Log | None = None,
) -> TrainResult:
    """Train the model's trainable parameters; keep the best epoch by validation accuracy.

    Over several processes (``world``) only rank 0 shows progress, validates and keeps the
    best tensors; the others train their share of each batch. In bf16 or fp16 the frozen
    linear weights are stored in that dtype (``store_frozen_linears``: the same numbers,
    faster), and ``model`` keeps them so: run it under ``autocast`` afterwards, or load the
    trained tensors into a fresh model as evaluate does. ``frozen_in_compute_dtype=False``
    keeps them float32, for benchmarks.
    ``checkpoints`` saves the run's state as it goes and continues one (``Checkpoints``);
    rank 0 reports each loss reading and validation to ``log``, after ``log.replay`` of what
    a resumed run had reported before its checkpoint.
    """
    world = world or World()
    model.to(device)
    if frozen_in_compute_dtype:
        store_frozen_linears(model, precision)
    torch.manual_seed(cfg.seed)  # dropout
    steps_per_epoch = epoch_steps(len(train), cfg)
    step = make_step(model, cfg, device, precision, steps_per_epoch, world)
    result = TrainResult(processes=world.size)
    progress = progress and world.main
    first, skip = _resume(step, result, steps_per_epoch, checkpoints, log)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for epoch in range(first, cfg.epochs + 1):
        done_before = skip if epoch == first else 0
        _train_epoch(
            *(step, train, cfg, epoch, steps_per_epoch, result, progress, done_before),
            checkpoints,
            log if world.main else None,
        )
        if world.main:
            _validate(model, val, eval_batch_size, step, result, epoch, progress, log)
        _checkpoint(step, result, epoch * steps_per_epoch, checkpoints)
    result.peak_memory_mb = _peak_memory_mb(device)
    return result
