"""lora_core: a hand-written LoRA for BERT-family text classification (SST-2 by default).

The Python API: ``lora_core.load()`` (the project's models/, or a folder) returns a
``Predictor``; ``predict(texts)`` gives each text's label and probabilities, as
`lora-sst2 predict` does. The public verbs are re-exported lazily (PEP 562):
``import lora_core.data`` loads no LoRA code and no torch, so a DVC stage depends only on
the modules it really imports.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LoRALinear": "lora_core.layer",
    "LoraSst2Error": "lora_core.errors",
    "Predictor": "lora_core.predictor",
    "count_parameters": "lora_core.inject",
    "inject_lora": "lora_core.inject",
    "load": "lora_core.api",
    "load_lora_state_dict": "lora_core.inject",
    "lora_state_dict": "lora_core.inject",
    "mark_trainable": "lora_core.inject",
    "merge_lora": "lora_core.inject",
    "unmerge_lora": "lora_core.inject",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lora_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
