"""Adapter files: the trained tensors as safetensors, plus a JSON of how to rebuild the model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lora_core.config import MAX_LENGTH, MODES, LoraConfig, ModelConfig, Params, build
from lora_core.errors import ConfigError, LoraSst2Error, check_keys, errors_from
from lora_core.files import json_text, read_json
from lora_core.inject import load_lora_state_dict
from lora_core.model import build_classifier
from lora_core.pretrained import BASE_DIR, LABELS

WEIGHTS, CONFIG = "adapter.safetensors", "adapter.json"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"  # PEFT's
LENGTHS = f"an integer from 2 to {MAX_LENGTH}"
FORMAT = 1


@dataclass(frozen=True)
class AdapterConfig:
    """What loading needs to rebuild the model an adapter was trained on (``adapter.json``)."""

    base_model: str
    max_length: int
    mode: str
    train_pooler: bool
    lora: LoraConfig
    labels: tuple[str, ...] = LABELS
    format: int = FORMAT

    @classmethod
    def from_params(cls, params: Params) -> AdapterConfig:
        """The config of an adapter trained with ``params``."""
        m, t = params.model, params.train
        return cls(m.name, m.max_length, t.mode, t.train_pooler, params.lora)

    @classmethod
    def from_json(cls, raw: Any, source: str) -> AdapterConfig:
        """Validate a parsed adapter.json like params.yaml; errors start with ``source``."""
        names = [f.name for f in dataclasses.fields(cls)]
        with errors_from(source):
            check_keys(raw, names, names, "key", "keys")
            labels = raw["labels"]
            labels = tuple(labels) if isinstance(labels, list) else labels
            lora = raw["lora"]
            if isinstance(lora, dict) and "dropout_mode" not in lora:
                lora = {**lora, "dropout_mode": "element"}  # written before the key: PEFT's
            config = cls(**{**raw, "lora": build(LoraConfig, "lora", lora), "labels": labels})
            config.check()
        return config

    def check(self) -> None:
        """Every value a loader relies on, each error naming its key and what is allowed."""
        rules = [
            (
                "format",
                _is_int(self.format) and self.format == FORMAT,
                f"this version reads {FORMAT}",
            ),
            ("base_model", isinstance(self.base_model, str) and self.base_model.strip(), "an id"),
            (
                "max_length",
                _is_int(self.max_length) and 2 <= self.max_length <= MAX_LENGTH,
                LENGTHS,
            ),
            ("mode", self.mode in MODES, f"use {', '.join(MODES)}"),
            ("train_pooler", isinstance(self.train_pooler, bool), "must be true or false"),
            ("labels", self.labels == LABELS, f"must be {list(LABELS)}"),
        ]
        for key, ok, allowed in rules:
            if not ok:
                raise ConfigError(f"{key} = {getattr(self, key)!r} is not allowed: {allowed}")

    def to_json(self) -> dict:
        """The adapter.json mapping (key order as written since format 1)."""
        lora = dataclasses.asdict(self.lora)
        targets = lora["targets"]
        return {
            "format": self.format,
            "base_model": self.base_model,
            "max_length": self.max_length,
            "mode": self.mode,
            "train_pooler": self.train_pooler,
            "labels": list(self.labels),
            "lora": {**lora, "targets": targets if isinstance(targets, str) else list(targets)},
        }

    def model_config(self) -> ModelConfig:
        return ModelConfig(name=self.base_model, max_length=self.max_length)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def write_adapter(
    weights: Path, config_path: Path, state: dict[str, torch.Tensor], config: AdapterConfig
) -> None:
    """Write the adapter's tensors and config to these two (temporary) paths."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in sorted(state.items())}
    save_file(tensors, str(weights), metadata={"base_model": config.base_model})
    config_path.write_text(json_text(config.to_json()), encoding="utf-8")


def is_peft_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a PEFT adapter: none of our two files, some of PEFT's."""
    ours = any((folder / n).exists() or (folder / n).is_symlink() for n in (WEIGHTS, CONFIG))
    return not ours and any((folder / n).exists() for n in (PEFT_WEIGHTS, PEFT_CONFIG))


def weights_file(folder: str | Path) -> Path:
    """The tensors file that ``read_adapter(folder)`` reads: ours, or a PEFT folder's."""
    folder = Path(folder)
    return folder / (PEFT_WEIGHTS if is_peft_folder(folder) else WEIGHTS)


def load_tensors(weights: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a damaged file is one clear error."""
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise LoraSst2Error(f"{weights} is not a readable safetensors file: {err}") from None


def read_adapter(folder: str | Path) -> tuple[dict[str, torch.Tensor], AdapterConfig]:
    """The adapter's tensors and validated config, with clear errors when absent or damaged.

    A folder in PEFT's format (adapter_config.json + adapter_model.safetensors) is converted.
    """
    folder = Path(folder)
    weights, config_path = weights_file(folder), folder / CONFIG
    if is_peft_folder(folder):
        from lora_core.peft_format import read_peft  # only a PEFT folder loads the converter

        state, config = read_peft(folder)
    elif not weights.is_file() or not config_path.is_file():
        raise LoraSst2Error(
            f"no adapter in {folder}/ ({WEIGHTS} and {CONFIG}): run `dvc repro` to train one"
        )
    else:
        config = AdapterConfig.from_json(read_json(config_path), str(config_path))
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
            f"the adapter in {folder}/ was trained on {config.base_model!r}, not "
            f"{expect_base!r}: re-run `dvc repro` or set model.name to match"
        )
    model = build_classifier(
        config.model_config(), config.lora, config.mode, config.train_pooler, base_dir=base_dir
    )
    try:
        load_lora_state_dict(model, state)
    except LoraSst2Error as err:
        raise LoraSst2Error(f"{weights_file(folder)}: {err}") from None
    return model, config
