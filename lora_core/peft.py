"""PEFT's adapter format, by hand (PEFT itself is never imported, so it is no dependency):
its two files and our export's marker, our tensors and config to theirs as
``get_peft_model(...).save_pretrained()`` writes them for a sequence classifier, and theirs
back to ours, refusing in one line what we cannot represent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from lora_core.adapter_config import PEFT_CONFIG, PEFT_WEIGHTS, AdapterConfig
from lora_core.config import MAX_RANK, LoraConfig, ModelConfig, target_regex_problem
from lora_core.errors import ConfigError, LoraSst2Error, errors_from, is_int, shown, type_ok
from lora_core.files import EXPORT_MARKER, json_text
from lora_core.inject import _matches as target_matches
from lora_core.layer import LoRALinear
from lora_core.pretrained import LABELS
from lora_core.readers import load_tensors, read_json

PREFIX = "base_model.model."  # PeftModel -> LoraModel -> the transformers model
LORA_LEAVES = ("lora_A", "lora_B")
CLASSIFIER = ["classifier", "score"]  # what PEFT adds to modules_to_save for SEQ_CLS
POOLERS = ("pooler", "bert.pooler")
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
            f"lora.targets = {shown(targets)} adapts {whole[0]}, which PEFT trains whole and never "
            "adapts: keep the classifier (and the pooler with train_pooler) out of lora.targets"
        )
    # inject's rule is PEFT's check_target_module_exists: a full regex, or name suffixes.
    peft = {n for n in modules if target_matches(n, targets) and not _saved_by_peft(n, saved)}
    extra = sorted(peft - ours)
    if extra:
        raise LoraSst2Error(
            f"lora.targets = {shown(targets)} also matches {shown(extra[0])} "
            f"({modules[extra[0]]}), which PEFT would adapt too: "
            "let lora.targets match nn.Linear layers only"
        )


def to_peft(
    state: Mapping[str, torch.Tensor], config: AdapterConfig, modules: Mapping[str, str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """PEFT's tensors and adapter_config.json for our adapter; ``modules`` from module_kinds."""
    if config.mode != "lora":
        raise LoraSst2Error(
            f"the adapter's mode is {shown(config.mode)}, and PEFT's format holds LoRA adapters "
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


def _targets_problem(value: Any) -> str | None:
    """Why PEFT's target_modules cannot be our lora.targets; a regex by config's one rule."""
    if isinstance(value, str) and value and value.lower() != "all-linear":  # PEFT's shorthand
        return target_regex_problem(value)
    names = isinstance(value, list) and all(isinstance(t, str) and t for t in value)
    return None if value and names else "module suffixes or a regex"


def _rules(raw: dict) -> list[tuple[str, bool, str]]:
    """(key, whether its value is one we can represent, what is allowed) per key of ``raw``."""
    r, alpha, dropout = raw["r"], raw["lora_alpha"], raw["lora_dropout"]
    targets = _targets_problem(raw.get("target_modules"))
    saved = raw["modules_to_save"]
    heads = ", ".join([*CLASSIFIER, *POOLERS])
    rules = [
        ("peft_type", raw.get("peft_type") == "LORA", "this version reads LORA only"),
        ("task_type", raw.get("task_type") == "SEQ_CLS", "this version reads SEQ_CLS only"),
        ("base_model_name_or_path", _id_ok(raw.get("base_model_name_or_path")), "an id"),
        ("r", is_int(r) and 1 <= r <= MAX_RANK, f"an integer from 1 to {MAX_RANK}"),
        ("lora_alpha", type_ok(alpha, float) and alpha > 0, "a number > 0"),
        ("lora_dropout", type_ok(dropout, float) and 0 <= dropout < 1, "a number >= 0 and < 1"),
        ("use_rslora", isinstance(raw["use_rslora"], bool), "true or false"),
        ("target_modules", targets is None, targets or ""),
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


def _adapter_fields(raw: Any) -> dict[str, Any]:
    """Our config's fields for a parsed adapter_config.json; what we cannot represent is
    refused."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of keys, got {shown(raw)}")
    raw = {**DEFAULTS, **raw}
    for key, ok, allowed in _rules(raw):
        if not ok:
            raise ConfigError(f"{key} = {shown(raw.get(key))} is not allowed: {allowed}")
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
    """AdapterConfig's labels, text_columns, max_length and truncation, which PEFT's files do
    not hold: from our export's marker; without one, transformers' names LABEL_i, one per
    class."""
    generic = tuple(f"LABEL_{i}" for i in range(classes or len(LABELS)))
    if marker is None:
        return {"labels": generic}
    if not isinstance(marker, dict):
        raise ConfigError(f"expected a mapping of keys, got {shown(marker)}")
    names = marker.get("id2label")
    if names is None:  # exported before class names were: every adapter was SST-2's
        labels = LABELS if classes in (None, len(LABELS)) else generic
    elif isinstance(names, dict) and set(names) == {str(i) for i in range(len(names))}:
        labels = tuple(names[str(i)] for i in range(len(names)))
    else:
        raise ConfigError(
            f"id2label = {shown(names)} is not allowed: ids 0 to N-1, each with a name"
        )
    if classes is not None and len(labels) != classes:
        raise ConfigError(f"id2label names {len(labels)} classes, the classifier has {classes}")
    kept = {k: marker[k] for k in ("text_columns", "max_length", "truncation") if k in marker}
    return {"labels": labels, **kept}


def from_peft(
    raw: Any,
    tensors: Mapping[str, torch.Tensor],
    config_source: str,
    weights_source: str,
    marker: Any = None,
    marker_source: str = EXPORT_MARKER,
) -> tuple[dict[str, torch.Tensor], AdapterConfig]:
    """Our state dict and AdapterConfig for PEFT's parsed adapter_config.json and tensors,
    with the class names and text columns of our export's parsed ``marker``."""
    with errors_from(config_source):
        fields = _adapter_fields(raw)
    state = {}
    for key, value in tensors.items():
        parts = key.removeprefix(PREFIX).split(".")
        lora = [i for i, part in enumerate(parts) if part.startswith("lora_")]
        plain_lora = lora == [len(parts) - 2] and parts[-2] in LORA_LEAVES and parts[-1] == "weight"
        if not key.startswith(PREFIX) or (lora and not plain_lora):
            raise LoraSst2Error(
                f"{weights_source} holds {shown(key)}: this version reads PEFT's LoRA weights "
                f"({PREFIX}<module>.lora_A.weight, lora_B), classifier and pooler only"
            )
        state[".".join(parts[:-1]) if lora else ".".join(parts)] = value
    with errors_from(marker_source):
        task = _task(marker, _classes(state))
    try:
        return state, AdapterConfig(**{**fields, **task})
    except ConfigError as err:  # named after the file the refused value came from
        source = marker_source if marker is not None and err.key in task else config_source
        raise ConfigError(f"{source}: {err}") from None


def write_peft(folder: Path, tensors: dict[str, torch.Tensor], peft_config: dict) -> None:
    """Write PEFT's two files into ``folder`` (a temporary one: see files.atomic_dir)."""
    save_file(tensors, str(folder / PEFT_WEIGHTS), metadata={"format": "pt"})
    (folder / PEFT_CONFIG).write_text(json_text(peft_config), encoding="utf-8")


def read_peft(folder: Path) -> tuple[dict[str, torch.Tensor], AdapterConfig]:
    """The adapter in a PEFT folder as our state dict and config, one clear error if not;
    the class names and text columns come from our export's marker when it has one."""
    weights, config_path, marker = (folder / n for n in (PEFT_WEIGHTS, PEFT_CONFIG, EXPORT_MARKER))
    for path in (config_path, weights):
        if not path.is_file():
            raise LoraSst2Error(
                f"no adapter in {folder}/: it holds a PEFT adapter without {path.name}"
            )
    task = read_json(marker) if marker.is_file() else None
    sources = (str(config_path), str(weights), task, str(marker))
    return from_peft(read_json(config_path), load_tensors(weights), *sources)
