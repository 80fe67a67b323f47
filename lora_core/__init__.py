"""lora_core: a hand-written LoRA for BERT sentiment classification."""

from lora_core.errors import LoraSst2Error
from lora_core.inject import (
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    lora_state_dict,
    mark_trainable,
    merge_lora,
    unmerge_lora,
)
from lora_core.layer import LoRALinear

__all__ = [
    "LoRALinear",
    "LoraSst2Error",
    "count_parameters",
    "inject_lora",
    "load_lora_state_dict",
    "lora_state_dict",
    "mark_trainable",
    "merge_lora",
    "unmerge_lora",
]
