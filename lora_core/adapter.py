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

from lora_core.config import MAX_LENGTH, MODES, LoraConfig, ModelConfig, Params, Section, build
from lora_core.errors import ConfigError, LoraSst2Error, check_keys, errors_from
from lora_core.files import json_text
from lora_core.inject import load_lora_state_dict
from lora_core.model import build_classifier
from lora_core.pretrained import BASE_DIR, LABELS
from lora_core.readers import read_json
from lora_core.tokens import Task

WEIGHTS, CONFIG = "adapter.safetensors", "adapter.json"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"  # PEFT's
# Marks a folder as our export, ours to replace, and says what PEFT's files cannot.
EXPORT_MARKER = "lora-sst2-export.json"
LENGTHS = f"must be an integer from 2 to {MAX_LENGTH}"
FORMAT = 1


@dataclass(frozen=True)
class AdapterConfig(Section):
    """What loading needs to rebuild the model an adapter was trained on (``adapter.json``),
    checked by the same rules as params.yaml's sections."""

    base_model: str
    max_length: int
    mode: str
    train_pooler: bool
    lora: LoraConfig
    labels: tuple[str, ...] = LABELS  # class names in id order
    text_columns: tuple[str, ...] = ("sentence",)  # one text, or a sentence pair
    format: int = FORMAT

    @classmethod
    def from_params(cls, params: Params, task: Task | None = None) -> AdapterConfig:
        """The config of an adapter trained with ``params`` on ``task``'s classes."""
        m, t = params.model, params.train
        task = task or Task(LABELS, ("sentence",))
        return cls(
            m.name,
            m.max_length,
            t.mode,
            t.train_pooler,
            params.lora,
            task.labels,
            task.text_columns,
        )

    @classmethod
    def from_json(cls, raw: Any, source: str) -> AdapterConfig:
        """Validate a parsed adapter.json like params.yaml; errors start with ``source``."""
        names = [f.name for f in dataclasses.fields(cls)]
        optional = ("text_columns",)  # absent before sentence pairs: one text column
        with errors_from(source):
            check_keys(raw, names, [n for n in names if n not in optional], "key", "keys")
            lora = raw["lora"]
            if isinstance(lora, dict) and "dropout_mode" not in lora:
                lora = {**lora, "dropout_mode": "element"}  # written before the key: PEFT's
            return cls(**{**raw, "lora": build(LoraConfig, "lora", lora)})

    def check(self) -> None:
        self.require("format", self.format == FORMAT, f"this version reads {FORMAT}")
        self.require("base_model", bool(self.base_model.strip()), "must be a model id")
        self.require("max_length", 2 <= self.max_length <= MAX_LENGTH, LENGTHS)
        self.require("mode", self.mode in MODES, f"use {', '.join(MODES)}")
        ok = len(self.labels) >= 2 and _distinct_names(self.labels)
        self.require("labels", ok, "must list two or more distinct class names")
        ok = len(self.text_columns) in (1, 2) and _distinct_names(self.text_columns)
        self.require("text_columns", ok, "must list one or two distinct column names")

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
            "text_columns": list(self.text_columns),
            "lora": {**lora, "targets": targets if isinstance(targets, str) else list(targets)},
        }

    def model_config(self) -> ModelConfig:
        return ModelConfig(name=self.base_model, max_length=self.max_length)


def _distinct_names(names: tuple[str, ...]) -> bool:
    return len(set(names)) == len(names) and all(n.strip() for n in names)


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


def read_peft(folder: Path) -> tuple[dict[str, torch.Tensor], AdapterConfig]:
    """The adapter in a PEFT folder as our state dict and config, one clear error if not;
    the class names and text columns come from our export's marker when it has one."""
    from lora_core.peft_read import from_peft  # only a PEFT folder loads the converter

    weights, config_path, marker = (
        folder / PEFT_WEIGHTS,
        folder / PEFT_CONFIG,
        folder / EXPORT_MARKER,
    )
    for path in (config_path, weights):
        if not path.is_file():
            raise LoraSst2Error(
                f"no adapter in {folder}/: it holds a PEFT adapter without {path.name}"
            )
    task = read_json(marker) if marker.is_file() else None
    sources = (str(config_path), str(weights), task, str(marker))
    state, fields = from_peft(read_json(config_path), load_tensors(weights), *sources)
    from_marker = {"labels", *task} if task is not None else set()  # id2label gives labels
    try:
        return state, AdapterConfig(**fields)
    except ConfigError as err:  # named after the file the refused value came from
        source = marker if err.key in from_marker else config_path
        raise ConfigError(f"{source}: {err}") from None


def write_peft(folder: Path, tensors: dict[str, torch.Tensor], peft_config: dict) -> None:
    """Write PEFT's two files into ``folder`` (a temporary one: see files.atomic_dir)."""
    save_file(tensors, str(folder / PEFT_WEIGHTS), metadata={"format": "pt"})
    (folder / PEFT_CONFIG).write_text(json_text(peft_config), encoding="utf-8")


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
