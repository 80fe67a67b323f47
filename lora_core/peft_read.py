"""PEFT's adapter format, theirs to ours: a parsed adapter_config.json and its tensors as our
state dict and AdapterConfig's fields, refusing in one line what we cannot represent.

Conversion only, by hand: adapter.py reads the files (peft_format.py converts the other way).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from lora_core.config import MAX_RANK, LoraConfig, ModelConfig
from lora_core.errors import ConfigError, LoraSst2Error, errors_from
from lora_core.peft_format import CLASSIFIER, LORA_LEAVES, POOLERS, PREFIX
from lora_core.pretrained import LABELS

HEAD_WEIGHTS = ("classifier.weight", "classifier.out_proj.weight", "score.weight")  # (N, hidden)
# Keys whose value does not change the model PEFT loads (bookkeeping and init-only settings).
IGNORED = {
    *("revision", "inference_mode", "peft_version", "auto_mapping"),
    *("megatron_core", "qalora_group_size"),  # used only with megatron_config, use_qalora
}
# PEFT's defaults for keys a hand-written adapter_config.json may leave out.
DEFAULTS = {
    "r": 8,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "use_rslora": False,
    "bias": "none",
    "init_lora_weights": True,
    "modules_to_save": None,
}
INITS = (True, False, "gaussian")  # init-only: the saved weights replace what they drew


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _targets_ok(value: Any) -> bool:
    if isinstance(value, str):
        try:
            re.compile(value)
        except re.error:
            return False
        return bool(value) and value.lower() != "all-linear"  # PEFT's shorthand, not a regex
    return bool(value) and isinstance(value, list) and all(isinstance(t, str) and t for t in value)


def _rules(raw: dict) -> list[tuple[str, bool, str]]:
    """(key, whether its value is one we can represent, what is allowed) per key of ``raw``."""
    r, alpha, dropout = raw["r"], raw["lora_alpha"], raw["lora_dropout"]
    saved = raw["modules_to_save"]
    heads = ", ".join([*CLASSIFIER, *POOLERS])
    rules = [
        ("peft_type", raw.get("peft_type") == "LORA", "this version reads LORA only"),
        ("task_type", raw.get("task_type") == "SEQ_CLS", "this version reads SEQ_CLS only"),
        ("base_model_name_or_path", _id_ok(raw.get("base_model_name_or_path")), "an id"),
        ("r", _is_int(r) and 1 <= r <= MAX_RANK, f"an integer from 1 to {MAX_RANK}"),
        ("lora_alpha", _number(alpha) and alpha > 0, "a number > 0"),
        ("lora_dropout", _number(dropout) and 0 <= dropout < 1, "a number >= 0 and < 1"),
        ("use_rslora", isinstance(raw["use_rslora"], bool), "true or false"),
        ("target_modules", _targets_ok(raw.get("target_modules")), "module suffixes or a regex"),
        ("bias", raw["bias"] == "none", "this version reads 'none' only"),
        ("init_lora_weights", raw["init_lora_weights"] in INITS, "true, false or 'gaussian'"),
        ("modules_to_save", _heads_ok(saved), f"null or some of {heads}"),
    ]
    checked = {key for key, _, _ in rules} | IGNORED
    for key in sorted(raw.keys() - checked):  # DoRA, rank patterns, chosen layers, ...
        value = raw[key]
        plain = value is None or value is False or value == {} or value == []
        rules.append((key, plain, "this version reads plain LoRA only (null, false or empty)"))
    return rules


def _adapter_config(raw: Any) -> dict[str, Any]:
    """Our config's fields for a parsed adapter_config.json; what we cannot represent is
    refused."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of keys, got {raw!r}")
    raw = {**DEFAULTS, **raw}
    for key, ok, allowed in _rules(raw):
        if not ok:
            raise ConfigError(f"{key} = {raw.get(key)!r} is not allowed: {allowed}")
    lora = LoraConfig(
        raw["r"], raw["lora_alpha"], raw["lora_dropout"], raw["target_modules"], raw["use_rslora"],
        dropout_mode="element",  # PEFT's lora_dropout drops elements of the input
    )  # fmt: skip
    pooler = bool(set(raw["modules_to_save"] or []) & set(POOLERS))
    name, max_length = raw["base_model_name_or_path"], ModelConfig().max_length
    return {
        "base_model": name,
        "max_length": max_length,
        "mode": "lora",
        "train_pooler": pooler,
        "lora": lora,
    }


def _heads_ok(saved: Any) -> bool:
    if saved is None:
        return True
    heads = (*CLASSIFIER, *POOLERS)
    return isinstance(saved, list) and all(isinstance(m, str) and m in heads for m in saved)


def _id_ok(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _classes(state: Mapping[str, torch.Tensor]) -> int | None:
    """How many classes the saved classifier scores (its weight's rows); None without one."""
    shapes = [state[k].shape for k in HEAD_WEIGHTS if k in state and state[k].ndim == 2]
    return int(shapes[0][0]) if shapes else None


def _task(marker: Any, classes: int | None) -> dict:
    """AdapterConfig's labels, text_columns and max_length, which PEFT's files do not hold:
    from our export's marker; without one, transformers' names LABEL_i, one per class."""
    generic = tuple(f"LABEL_{i}" for i in range(classes or len(LABELS)))
    if marker is None:
        return {"labels": generic}
    if not isinstance(marker, dict):
        raise ConfigError(f"expected a mapping of keys, got {marker!r}")
    names = marker.get("id2label")
    if names is None:  # exported before class names were: every adapter was SST-2's
        labels = LABELS if classes in (None, len(LABELS)) else generic
    elif isinstance(names, dict) and set(names) == {str(i) for i in range(len(names))}:
        labels = tuple(names[str(i)] for i in range(len(names)))
    else:
        raise ConfigError(f"id2label = {names!r} is not allowed: ids 0 to N-1, each with a name")
    if classes is not None and len(labels) != classes:
        raise ConfigError(f"id2label names {len(labels)} classes, the classifier has {classes}")
    kept = {k: marker[k] for k in ("text_columns", "max_length") if k in marker}
    return {"labels": labels, **kept}


def from_peft(
    raw: Any,
    tensors: Mapping[str, torch.Tensor],
    config_source: str,
    weights_source: str,
    marker: Any = None,
    marker_source: str = "lora-sst2-export.json",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Our state dict and AdapterConfig's fields for PEFT's parsed adapter_config.json and
    tensors, with the class names and text columns of our export's parsed ``marker``."""
    with errors_from(config_source):
        fields = _adapter_config(raw)
    state = {}
    for key, value in tensors.items():
        parts = key.removeprefix(PREFIX).split(".")
        lora = [i for i, part in enumerate(parts) if part.startswith("lora_")]
        plain_lora = lora == [len(parts) - 2] and parts[-2] in LORA_LEAVES and parts[-1] == "weight"
        if not key.startswith(PREFIX) or (lora and not plain_lora):
            raise LoraSst2Error(
                f"{weights_source} holds {key!r}: this version reads PEFT's LoRA weights "
                f"({PREFIX}<module>.lora_A.weight, lora_B), classifier and pooler only"
            )
        state[".".join(parts[:-1]) if lora else ".".join(parts)] = value
    with errors_from(marker_source):
        return state, {**fields, **_task(marker, _classes(state))}
