"""Put LoRA into a model, choose what trains, merge, and save or load the adapter."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from lora_core.config import MODE
from lora_core.errors import LoraSst2Error, fail, shown
from lora_core.layer import LoRALinear

HEAD_PREFIXES = ("classifier",)
POOLER_MARKER = "pooler"


def _matches(name: str, targets: str | Iterable[str]) -> bool:
    # A string is a regex over the full module name (as in PEFT); a list holds name suffixes.
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(
    model: nn.Module,
    targets: str | Iterable[str] = ("query", "value"),
    r: int = 4,
    alpha: float = 16.0,
    dropout: float = 0.0,
    rslora: bool = False,
    dropout_mode: str = "element",
) -> list[str]:
    """Replace each matching ``nn.Linear`` with a ``LoRALinear``; return the replaced names."""
    targets = targets if isinstance(targets, str) else tuple(targets)
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and _matches(name, targets)
    ]
    if not names:
        raise LoraSst2Error(
            f"lora.targets = {shown(targets)} matches no nn.Linear in "
            f"{type(model).__name__}; use module name suffixes such as ['query', 'value'] "
            "or a regex string over full module names"
        )
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        lora = LoRALinear(
            getattr(parent, child), r, alpha, dropout, rslora=rslora, dropout_mode=dropout_mode
        )
        setattr(parent, child, lora)
    return names


def lora_layers(model: nn.Module) -> Iterator[LoRALinear]:
    """Every LoRALinear in the model."""
    return (m for m in model.modules() if isinstance(m, LoRALinear))


def _is_head(name: str, train_pooler: bool) -> bool:
    top = name.split(".")[0]
    return top in HEAD_PREFIXES or (train_pooler and POOLER_MARKER in name.split("."))


def mark_trainable(model: nn.Module, mode: str = "lora", train_pooler: bool = False) -> None:
    """Freeze the model except what ``mode`` trains.

    ``lora``: LoRA matrices and the classifier head (and the pooler if ``train_pooler``);
    ``head``: the classifier head (and the pooler if ``train_pooler``); ``full``: everything.
    """
    if not MODE.test(mode):
        fail("train", "mode", mode, MODE.allowed)
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        is_lora = leaf in ("lora_A", "lora_B")
        if mode == "full":
            param.requires_grad_(True)
        elif mode == "lora":
            param.requires_grad_(is_lora or _is_head(name, train_pooler))
        else:
            param.requires_grad_(_is_head(name, train_pooler))


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRA update into its base weight (idempotent)."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every LoRA update back out of its base weight (idempotent)."""
    for layer in lora_layers(model):
        layer.unmerge()


def unload_lora(model: nn.Module) -> None:
    """Put each LoRALinear's base ``nn.Linear`` back in its place (merge first to keep LoRA)."""
    names = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, getattr(parent, child).base)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The tensors that train (``mark_trainable``'s choice), by name, in the model's order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter: every trainable tensor (LoRA matrices and head), detached, contiguous."""
    if any(layer.merged for layer in lora_layers(model)):
        raise LoraSst2Error("cannot save the adapter of a merged model: call unmerge_lora first")
    return {
        name: param.detach().contiguous() for name, param in trainable_parameters(model).items()
    }


def load_lora_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy an adapter into a model made the same way; refuse any key or shape mismatch."""
    params = trainable_parameters(model)
    missing = sorted(set(params) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(params))
    if missing or unexpected:
        raise LoraSst2Error(
            f"adapter does not fit the model: missing keys {_short(missing)}, "
            f"unexpected keys {_short(unexpected)}"
        )
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(p.shape)}"
        for k, p in params.items()
        if state_dict[k].shape != p.shape
    ]
    if wrong:
        raise LoraSst2Error(f"adapter shapes do not fit the model: {_short(wrong)}")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state_dict[name])


def _short(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit]) or "none"
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, each shared tensor counted once."""
    trainable = total = 0
    for param in model.parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total
