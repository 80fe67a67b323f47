"""PEFT's adapter format, our side to theirs: our tensors and config as
``get_peft_model(...).save_pretrained()`` writes them for a sequence classifier
(peft_read.py converts back).

Conversion only, by hand: adapter.py reads and writes the files, and PEFT itself is never
imported, so it is no dependency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lora_core.errors import LoraSst2Error
from lora_core.inject import _matches as target_matches
from lora_core.layer import LoRALinear

if TYPE_CHECKING:  # a type only: adapter.py imports this module, not the other way round
    from lora_core.adapter import AdapterConfig

PREFIX = "base_model.model."  # PeftModel -> LoraModel -> the transformers model
LORA_LEAVES = ("lora_A", "lora_B")
CLASSIFIER = ["classifier", "score"]  # what PEFT adds to modules_to_save for SEQ_CLS
POOLERS = ("pooler", "bert.pooler")


def module_kinds(model: nn.Module) -> dict[str, str]:
    """Module name -> class name, as PEFT sees the base model (a LoRALinear is its Linear)."""
    lora = {name for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    inside = tuple(f"{name}." for name in lora)
    return {
        name: "Linear" if name in lora or isinstance(m, nn.Linear) else type(m).__name__
        for name, m in model.named_modules()
        if not name.startswith(inside)
    }


def _saved_by_peft(name: str, saved: list[str]) -> bool:
    # PEFT never puts LoRA inside a module it saves whole (modules_to_save).
    return any(re.match(rf"(^|.*\.){m}($|\..*)", name) for m in saved)


def _check_targets(
    state: Mapping[str, torch.Tensor], targets, modules: Mapping[str, str], saved: list[str]
) -> None:
    """PEFT must put LoRA exactly where we did, given the same target_modules."""
    ours = {k.rsplit(".", 1)[0] for k in state if k.rsplit(".", 1)[-1] in LORA_LEAVES}
    whole = sorted(n for n in ours if _saved_by_peft(n, saved))
    if whole:
        raise LoraSst2Error(
            f"lora.targets = {targets!r} adapts {whole[0]}, which PEFT trains whole and never "
            "adapts: keep the classifier (and the pooler with train_pooler) out of lora.targets"
        )
    # inject's rule is PEFT's check_target_module_exists: a full regex, or name suffixes.
    peft = {n for n in modules if target_matches(n, targets) and not _saved_by_peft(n, saved)}
    extra = sorted(peft - ours)
    if extra:
        raise LoraSst2Error(
            f"lora.targets = {targets!r} also matches {extra[0]!r} ({modules[extra[0]]}), "
            "which PEFT would adapt too: let lora.targets match nn.Linear layers only"
        )


def to_peft(
    state: Mapping[str, torch.Tensor], config: AdapterConfig, modules: Mapping[str, str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """PEFT's tensors and adapter_config.json for our adapter; ``modules`` from module_kinds."""
    if config.mode != "lora":
        raise LoraSst2Error(
            f"the adapter's mode is {config.mode!r}, and PEFT's format holds LoRA adapters "
            "(mode 'lora') only: export this one with --merged"
        )
    saved = (["pooler"] if config.train_pooler else []) + CLASSIFIER
    targets = config.lora.targets
    _check_targets(state, targets, modules, saved)
    tensors = {}
    for key, value in sorted(state.items()):
        weight = ".weight" if key.rsplit(".", 1)[-1] in LORA_LEAVES else ""  # X.lora_A.weight
        tensors[PREFIX + key + weight] = value.detach().cpu().contiguous()
    lora = config.lora
    # Only keys that PEFT has read since 0.9 (older PEFT refuses keys it does not know);
    # PEFT fills in its defaults for the rest. Sorted, as PEFT writes them.
    peft_config = {
        "alpha_pattern": {},
        "base_model_name_or_path": config.base_model,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "modules_to_save": saved,
        "peft_type": "LORA",
        "r": lora.r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets if isinstance(targets, str) else list(targets),
        "task_type": "SEQ_CLS",
        "use_dora": False,
        "use_rslora": lora.rslora,
    }
    return tensors, peft_config
