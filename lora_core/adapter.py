"""Adapter files: the trained tensors as safetensors, plus adapter.json (AdapterConfig) of
how to rebuild the model; a folder in PEFT's format is read through peft.py."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from lora_core.adapter_config import CONFIG, PEFT_CONFIG, PEFT_WEIGHTS, WEIGHTS, AdapterConfig
from lora_core.errors import ConfigError, LoraSst2Error, shown
from lora_core.files import json_text
from lora_core.inject import load_lora_state_dict
from lora_core.model import build_classifier
from lora_core.pretrained import BASE_DIR
from lora_core.readers import load_tensors, read_json, sha256

WEIGHTS_HASH = "weights_sha256"  # adapter.json's key tying it to its adapter.safetensors
_HEX64 = re.compile(r"[0-9a-f]{64}")


def write_adapter(
    weights: Path, config_path: Path, state: dict[str, torch.Tensor], config: AdapterConfig
) -> None:
    """Write the adapter's tensors and config to these two (temporary) paths; the config
    records the tensors file's sha256, so that a weights file from another run is refused."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in sorted(state.items())}
    save_file(tensors, str(weights), metadata={"base_model": config.base_model})
    raw = {**config.to_json(), WEIGHTS_HASH: sha256(weights)}
    config_path.write_text(json_text(raw), encoding="utf-8")


def _read_config(config_path: Path) -> tuple[AdapterConfig, str | None]:
    """adapter.json's config and the weights hash it records (None in folders written
    before the hash was: they load as they did)."""
    raw = read_json(config_path)
    expected = raw.get(WEIGHTS_HASH) if isinstance(raw, dict) else None
    if isinstance(raw, dict) and WEIGHTS_HASH in raw:
        if not isinstance(expected, str) or not _HEX64.fullmatch(expected):
            raise ConfigError(
                f"{config_path}: {WEIGHTS_HASH} = {shown(expected)} is not allowed: the sha256 "
                f"of {WEIGHTS} (64 hex digits)",
                key=WEIGHTS_HASH,
            )
        raw = {k: v for k, v in raw.items() if k != WEIGHTS_HASH}
    return AdapterConfig.from_json(raw, str(config_path)), expected


def _check_weights(weights: Path, config_path: Path, expected: str | None) -> None:
    if expected is not None and sha256(weights) != expected:
        raise LoraSst2Error(
            f"{weights} is not the weights file {config_path} was written with (its sha256 "
            f"differs): copy both files from one run, or re-run `dvc repro`"
        )


def is_peft_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a PEFT adapter: none of our two files, some of PEFT's."""
    ours = any((folder / n).exists() or (folder / n).is_symlink() for n in (WEIGHTS, CONFIG))
    return not ours and any((folder / n).exists() for n in (PEFT_WEIGHTS, PEFT_CONFIG))


def weights_file(folder: str | Path) -> Path:
    """The tensors file that ``read_adapter(folder)`` reads: ours, or a PEFT folder's."""
    folder = Path(folder)
    return folder / (PEFT_WEIGHTS if is_peft_folder(folder) else WEIGHTS)


def read_adapter(folder: str | Path) -> tuple[dict[str, torch.Tensor], AdapterConfig]:
    """The adapter's tensors and validated config, with clear errors when absent or damaged.

    A folder in PEFT's format (adapter_config.json + adapter_model.safetensors) is converted.
    """
    folder = Path(folder)
    weights, config_path = weights_file(folder), folder / CONFIG
    if is_peft_folder(folder):
        from lora_core.peft import read_peft  # only a PEFT folder loads the converter

        state, config = read_peft(folder)
    elif not weights.is_file() or not config_path.is_file():
        raise LoraSst2Error(
            f"no adapter in {folder}/ ({WEIGHTS} and {CONFIG}): run `dvc repro` to train one"
        )
    else:
        config, expected = _read_config(config_path)
        _check_weights(weights, config_path, expected)
        state = load_tensors(weights)
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise LoraSst2Error(f"{weights} holds NaN or inf values (in {bad[0]}): retrain it")
    return state, config


def load_trained(
    folder: str | Path, base_dir: str | Path = BASE_DIR, expect_base: str | None = None
) -> tuple[nn.Module, AdapterConfig]:
    """Base model + the adapter in ``folder``; ``expect_base`` checks the base model id."""
    state, config = read_adapter(folder)
    if expect_base is not None and config.base_model != expect_base:
        raise LoraSst2Error(
            f"the adapter in {folder}/ was trained on {shown(config.base_model)}, not "
            f"{shown(expect_base)}: re-run `dvc repro` or set model.name to match"
        )
    model = build_classifier(
        config.model_config(),
        config.lora,
        config.mode,
        config.train_pooler,
        base_dir=base_dir,
        labels=config.labels,
    )
    try:
        load_lora_state_dict(model, state)
    except LoraSst2Error as err:
        raise LoraSst2Error(f"{weights_file(folder)}: {err}") from None
    return model, config
