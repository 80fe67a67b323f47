"""An adapter folder's file names (ours and PEFT's) and AdapterConfig: what loading needs
to rebuild the model an adapter was trained on (``adapter.json``), checked by the same rules
as params.yaml's sections.

A leaf: the adapter's files (adapter.py) and PEFT's format (peft.py) both build on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lora_core.config import (
    CLASS_NAMES,
    LENGTH,
    MODE,
    MODEL_NAME,
    TEXT_COLUMNS,
    TRUNCATIONS,
    LoraConfig,
    ModelConfig,
    Params,
    Section,
    build,
)
from lora_core.errors import check_keys, errors_from, has_control
from lora_core.pretrained import LABELS
from lora_core.tokens import Task

WEIGHTS, CONFIG = "adapter.safetensors", "adapter.json"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"  # PEFT's
FORMAT = 1
CONTROL = "a name holds no control characters (tabs, newlines, terminal escapes)"


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
    truncation: str = "head"  # how tokenize cut long texts; predict cuts the same way
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
            task.truncation,
        )

    @classmethod
    def from_json(cls, raw: Any, source: str) -> AdapterConfig:
        """Validate a parsed adapter.json like params.yaml; errors start with ``source``."""
        names = [f.name for f in dataclasses.fields(cls)]
        # text_columns: absent before sentence pairs (one text); truncation: absent for head
        optional = ("text_columns", "truncation")
        with errors_from(source):
            check_keys(raw, names, [n for n in names if n not in optional], "key", "keys")
            lora = raw["lora"]
            if isinstance(lora, dict) and "dropout_mode" not in lora:
                lora = {**lora, "dropout_mode": "element"}  # written before the key: PEFT's
            return cls(**{**raw, "lora": build(LoraConfig, "lora", lora)})

    def check(self) -> None:
        """Refuse, by key, a value that no model can be rebuilt from."""
        self.require("format", self.format == FORMAT, f"this version reads {FORMAT}")
        self.follow("base_model", MODEL_NAME)
        self.follow("max_length", LENGTH)
        self.follow("mode", MODE)
        self.follow("labels", CLASS_NAMES)
        self.follow("text_columns", TEXT_COLUMNS)
        for key in ("labels", "text_columns"):  # printed by predict and info
            ok = not any(has_control(name) for name in getattr(self, key))
            self.require(key, ok, CONTROL)
        ok = self.truncation in TRUNCATIONS
        self.require("truncation", ok, f"use {' or '.join(TRUNCATIONS)}")
        ok = self.truncation == "head" or len(self.text_columns) == 1
        self.require("truncation", ok, "sentence pairs cut their longer text first: use head")

    def to_json(self) -> dict:
        """The adapter.json mapping (key order as written since format 1; ``truncation`` only
        when not head, so every adapter.json written before the key reads the same)."""
        lora = dataclasses.asdict(self.lora)
        targets = lora["targets"]
        return {
            "format": self.format,
            "base_model": self.base_model,
            "max_length": self.max_length,
            **({} if self.truncation == "head" else {"truncation": self.truncation}),
            "mode": self.mode,
            "train_pooler": self.train_pooler,
            "labels": list(self.labels),
            "text_columns": list(self.text_columns),
            "lora": {**lora, "targets": targets if isinstance(targets, str) else list(targets)},
        }

    def model_config(self) -> ModelConfig:
        """The base model, length and truncation as params.yaml's model section."""
        return ModelConfig(self.base_model, self.max_length, self.truncation)
