"""Adapter files: the trained tensors as safetensors, plus a JSON of how to rebuild the model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lora_core.config import LoraConfig, ModelConfig
from lora_core.errors import LoraSst2Error
from lora_core.inject import load_lora_state_dict
from lora_core.io import atomic_path, write_json
from lora_core.model import BASE_DIR, LABELS, build_classifier

WEIGHTS, CONFIG = "adapter.safetensors", "adapter.json"
FORMAT = 1


def adapter_config(model_cfg: ModelConfig, lora_cfg: LoraConfig, mode: str, pooler: bool) -> dict:
    """What loading needs to rebuild the model the adapter was trained on."""
    return {
        "format": FORMAT,
        "base_model": model_cfg.name,
        "max_length": model_cfg.max_length,
        "mode": mode,
        "train_pooler": pooler,
        "labels": list(LABELS),
        "lora": {**asdict(lora_cfg), "targets": _targets(lora_cfg.targets)},
    }


def _targets(targets):
    return targets if isinstance(targets, str) else list(targets)


def save_adapter(folder: str | Path, state: dict[str, torch.Tensor], config: dict) -> None:
    """Write ``adapter.safetensors`` and ``adapter.json`` atomically (tensors first)."""
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in sorted(state.items())}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"base_model": config["base_model"]})
    write_json(folder / CONFIG, config)


def read_adapter(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The adapter's tensors and config, with clear errors when absent or damaged."""
    folder = Path(folder)
    weights, config_path = folder / WEIGHTS, folder / CONFIG
    if not weights.exists() or not config_path.exists():
        raise LoraSst2Error(
            f"no adapter in {folder}/ ({WEIGHTS} and {CONFIG}): run `dvc repro` to train one"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LoraSst2Error(f"{config_path} is not valid JSON: {err}") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise LoraSst2Error(f"{weights} is not a readable safetensors file: {err}") from None
    return state, config


def load_trained(
    folder: str | Path, base_dir: str | Path = BASE_DIR, expect_base: str | None = None
) -> tuple[nn.Module, dict]:
    """Base model + the adapter in ``folder``; ``expect_base`` checks the base model id."""
    state, config = read_adapter(folder)
    base = config.get("base_model")
    if expect_base is not None and base != expect_base:
        raise LoraSst2Error(
            f"the adapter in {folder}/ was trained on {base!r}, not {expect_base!r}: "
            "re-run `dvc repro` or set model.name to match"
        )
    lora_cfg = LoraConfig(**config["lora"])
    model_cfg = ModelConfig(name=base, max_length=config["max_length"])
    model = build_classifier(
        model_cfg, lora_cfg, config["mode"], config["train_pooler"], base_dir=base_dir
    )
    load_lora_state_dict(model, state)
    return model, config
