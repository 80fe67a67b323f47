"""Train and evaluate loops: devices, precision, batches in, numbers out; no file I/O."""

from __future__ import annotations

import contextlib
import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lora_core.config import TrainConfig
from lora_core.data import (
    TokenizedSplit,
    bucket_batches,
    collate,
    count_bucket_batches,
    sorted_batches,
)
from lora_core.errors import LoraSst2Error
from lora_core.inject import lora_state_dict

LOG_EVERY = 20  # steps between loss readings: one host sync per window, not per step


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LoraSst2Error("train.device = 'cuda' but no CUDA GPU is visible: use auto or cpu")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix math (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device) -> str:
    """Pick ``fp32``, ``bf16`` or ``fp16``; ``auto`` takes the fastest the device supports."""
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if name == "auto":
            return "bf16" if bf16 else "fp16"
        if name == "bf16" and not bf16:
            raise LoraSst2Error("precision = 'bf16' but this GPU has no bf16: use fp16 or auto")
        return name
    if name == "fp16":
        raise LoraSst2Error("precision = 'fp16' needs a CUDA GPU: on CPU use bf16, fp32 or auto")
    if name == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return name


def autocast(precision: str, device: torch.device):
    """Autocast context for ``precision``; weights, LoRA and optimizer state stay float32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type != "cuda":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    split: TokenizedSplit,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """Float32 logits (n, num_labels) in the split's order, batched by length."""
    model.eval()
    out: np.ndarray | None = None
    for indices in sorted_batches(split.lengths, batch_size):
        batch = to_device(collate(split, indices), device)
        with autocast(precision, device):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = logits.logits.float().cpu().numpy()
        if out is None:
            out = np.empty((len(split), logits.shape[1]), dtype=np.float32)
        out[indices] = logits
    return out


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


@dataclass
class TrainResult:
    """What a training run produced: curves, best epoch and its trainable tensors, speed."""

    curve: list[dict] = field(default_factory=list)  # {step, epoch, loss, lr} per LOG_EVERY
    val_accuracy: list[float] = field(default_factory=list)  # one per epoch
    epoch_end_steps: list[int] = field(default_factory=list)  # optimizer steps after each epoch
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    train_seconds: float = 0.0
    examples: int = 0
    peak_memory_mb: float = 0.0


def _optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    params = [p for p in model.parameters() if p.requires_grad]  # frozen weights: no state
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type == "cuda")


def _schedule(optimizer, total_steps: int, warmup_ratio: float):
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:  # linear warmup, then linear decay to 0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_finite(losses: list[torch.Tensor], first_step: int, lr: float) -> list[float]:
    values = torch.stack(losses).float().cpu().tolist()
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


def train_model(
    model: nn.Module,
    train: TokenizedSplit,
    val: TokenizedSplit,
    cfg: TrainConfig,
    device: torch.device,
    precision: str,
    eval_batch_size: int = 128,
    progress: bool = True,
) -> TrainResult:
    """Train the model's trainable parameters; keep the best epoch by validation accuracy."""
    model.to(device)
    torch.manual_seed(cfg.seed)  # dropout
    step_fn = torch.compile(model, dynamic=True) if cfg.compile else model
    optimizer = _optimizer(model, cfg, device)
    steps_per_epoch = count_bucket_batches(len(train), cfg.batch_size, cfg.bucket_chunk)
    scheduler = _schedule(optimizer, cfg.epochs * steps_per_epoch, cfg.warmup_ratio)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    trainable = [p for p in model.parameters() if p.requires_grad]
    result, step = TrainResult(), 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        batches = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, epoch)
        bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress, mininterval=1)
        window: list[torch.Tensor] = []
        start = time.perf_counter()
        for indices in bar:
            batch = to_device(collate(train, indices), device)
            with autocast(precision, device):
                out = step_fn(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = F.cross_entropy(out.logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            result.examples += len(indices)
            window.append(loss.detach())
            if len(window) == LOG_EVERY or step % steps_per_epoch == 0:
                values = _check_finite(window, step - len(window) + 1, cfg.lr)
                mean = sum(values) / len(values)
                lr = scheduler.get_last_lr()[0]
                result.curve.append({"step": step, "epoch": epoch, "loss": mean, "lr": lr})
                bar.set_postfix(loss=f"{mean:.4f}", refresh=False)
                window = []
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result.train_seconds += time.perf_counter() - start
        result.epoch_end_steps.append(step)
        logits = predict_logits(model, val, eval_batch_size, device, precision)
        result.val_accuracy.append(accuracy(logits, val.labels))
        if progress:
            speed = result.examples / result.train_seconds
            tqdm.write(
                f"epoch {epoch}: val accuracy {result.val_accuracy[-1]:.4f}, {speed:.0f} ex/s"
            )
        if result.val_accuracy[-1] > max(result.val_accuracy[:-1], default=-1.0):
            result.best_epoch = epoch
            result.best_state = {
                k: v.detach().cpu().clone() for k, v in lora_state_dict(model).items()
            }
    result.peak_memory_mb = _peak_memory_mb(device)
    return result
