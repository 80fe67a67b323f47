"""Build the SST-2 classifier: the pretrained model, LoRA in place, and what trains."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lora_core.config import LoraConfig, ModelConfig, Params
from lora_core.inject import inject_lora, mark_trainable
from lora_core.layer import LoRALinear
from lora_core.pretrained import BASE_DIR, LABELS, load_base_model


def set_model_dropout(model: nn.Module, p: float) -> int:
    """Set the model's own dropout rates to ``p``; returns how many modules were set.

    That is every ``nn.Dropout`` (embeddings, attention, hidden, classifier) except LoRA's
    own, which ``lora.dropout`` sets.
    """
    lora_dropouts = {id(m.dropout) for m in model.modules() if isinstance(m, LoRALinear)}
    own = [m for m in model.modules() if isinstance(m, nn.Dropout) and id(m) not in lora_dropouts]
    for module in own:
        module.p = p
    return len(own)


def build_classifier(
    model_cfg: ModelConfig,
    lora_cfg: LoraConfig,
    mode: str = "lora",
    train_pooler: bool = False,
    seed: int = 0,
    base_dir: str | Path = BASE_DIR,
    model_dropout: float | None = None,
    labels: tuple[str, ...] = LABELS,
) -> nn.Module:
    """Base model + LoRA (in ``lora`` mode) + trainable flags, seeded for a repeatable init.

    ``labels`` are the classes in id order. ``model_dropout`` replaces the checkpoint's own
    dropout rate for training (None keeps it); at evaluation dropout is off either way.
    """
    torch.manual_seed(seed)  # the classifier head and LoRA A are drawn from this seed
    model = load_base_model(model_cfg.name, base_dir, labels)
    if mode == "lora":
        inject_lora(
            model,
            targets=lora_cfg.targets,
            r=lora_cfg.r,
            alpha=lora_cfg.alpha,
            dropout=lora_cfg.dropout,
            rslora=lora_cfg.rslora,
            dropout_mode=lora_cfg.dropout_mode,
        )
    mark_trainable(model, mode=mode, train_pooler=train_pooler)
    if model_dropout is not None:
        set_model_dropout(model, model_dropout)
    return model


def classifier_for_training(
    params: Params, base_dir: str | Path = BASE_DIR, labels: tuple[str, ...] = LABELS
) -> nn.Module:
    """The classifier exactly as the train stage builds it from params.yaml, for ``labels``."""
    cfg = params.train
    return build_classifier(
        params.model,
        params.lora,
        cfg.mode,
        cfg.train_pooler,
        cfg.seed,
        base_dir=base_dir,
        model_dropout=cfg.model_dropout,
        labels=labels,
    )
