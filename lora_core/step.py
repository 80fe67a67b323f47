"""One optimizer step: AdamW over the trainable tensors, warmup then linear decay, autocast,
gradient clipping; what the training loop calls once per batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lora_core.batches import model_inputs
from lora_core.config import TrainConfig
from lora_core.device import autocast, to_device
from lora_core.distributed import World
from lora_core.inject import trainable_parameters


def optimizer_for(model: nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW over the trainable tensors: weight decay on matrices, none on biases and norms."""
    params = list(trainable_parameters(model).values())  # frozen weights: no state
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type == "cuda")


def schedule(optimizer, total_steps: int, warmup_ratio: float):
    """The learning rate: linear warmup over ``warmup_ratio`` of the steps, then linear decay."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:  # linear warmup, then linear decay to 0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Step:
    """What one optimizer step needs besides the batch."""

    model: nn.Module
    forward: nn.Module  # the model (DDP-wrapped over several processes), or it compiled
    eager: nn.Module  # the same, never compiled: a batch of one row would recompile
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    trainable: list[nn.Parameter]
    device: torch.device
    precision: str
    max_grad_norm: float
    world: World

    def __call__(self, batch: dict[str, torch.Tensor], weight: float = 1.0) -> torch.Tensor:
        """Forward, backward, clip, step; the loss stays on the device (no host sync).

        One process: the mean loss of the batch. Several: this rank's summed loss times
        ``weight`` (``World.share``), so that DDP's average is the global batch's mean.
        """
        batch = to_device(batch, self.device)
        # torch.compile(dynamic=True) still specialises a size of 1: one row (an epoch's last
        # batch, or a rank's share of a small one) would cost a whole recompile.
        forward = self.forward if len(batch["labels"]) > 1 else self.eager
        with autocast(self.precision, self.device):
            out = forward(**model_inputs(batch))
        if self.world.size == 1:
            loss = F.cross_entropy(out.logits.float(), batch["labels"])
        else:
            loss = F.cross_entropy(out.logits.float(), batch["labels"], reduction="sum") * weight
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.trainable, self.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()


def make_step(
    model,
    cfg: TrainConfig,
    device,
    precision: str,
    steps_per_epoch: int,
    world: World | None = None,
) -> Step:
    world = world or World()
    optimizer = optimizer_for(model, cfg, device)
    forward = model
    if world.size > 1:  # gradients averaged over ranks; frozen weights are not synced
        ids = [world.local_rank] if device.type == "cuda" else None
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return Step(
        model=model,
        forward=torch.compile(forward, dynamic=True) if cfg.compile else forward,
        eager=forward,
        optimizer=optimizer,
        scheduler=schedule(optimizer, cfg.epochs * steps_per_epoch, cfg.warmup_ratio),
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        trainable=list(trainable_parameters(model).values()),
        device=device,
        precision=precision,
        max_grad_norm=cfg.max_grad_norm,
        world=world,
    )
