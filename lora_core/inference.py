"""The one inference path that evaluate, predict, export and the benchmarks share: base model
+ adapter, merged, on the device and precision params say, scored in length-sorted batches;
same weights, device, precision and batches, so same logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lora_core.adapter import load_trained
from lora_core.adapter_config import AdapterConfig
from lora_core.batches import collate, model_inputs, sorted_batches
from lora_core.config import Params
from lora_core.device import autocast, resolve_device, resolve_precision, to_device, use_attention
from lora_core.inject import merge_lora
from lora_core.pretrained import BASE_DIR
from lora_core.tokens import TokenizedSplit


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    split: TokenizedSplit,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """Float32 logits (n, num_labels) in the split's order, batched by length."""
    model.eval()
    out: np.ndarray | None = None
    for indices in sorted_batches(split.lengths, batch_size):
        batch = to_device(collate(split, indices), device)
        with autocast(precision, device):
            logits = model(**model_inputs(batch))
        logits = logits.logits.float().cpu().numpy()
        if out is None:
            out = np.empty((len(split), logits.shape[1]), dtype=np.float32)
        out[indices] = logits
    return out


@dataclass
class Inference:
    """A trained model with its adapter merged, on the device and precision it scores with."""

    model: nn.Module
    config: AdapterConfig
    device: torch.device
    precision: str
    batch_size: int

    def logits(self, split: TokenizedSplit) -> np.ndarray:
        """Float32 logits (n, num_labels) of ``split``, in its order."""
        return predict_logits(self.model, split, self.batch_size, self.device, self.precision)


def load_for_inference(
    adapter_dir: str | Path, params: Params | None = None, base_dir: str | Path = BASE_DIR
) -> Inference:
    """Base model + adapter, merged (one matmul per layer), on params' device and precision.

    The device is ``train.device``, the precision and batch ``evaluate.*``; with ``params``
    given, the adapter must have been trained on ``model.name``. Without, the defaults.
    """
    project = params or Params()
    expect = params.model.name if params else None
    model, config = load_trained(adapter_dir, base_dir, expect_base=expect)
    merge_lora(model)
    device = resolve_device(project.train.device)
    precision = resolve_precision(project.evaluate.precision, device, "evaluate.precision")
    use_attention(model, project.model.attention, device)
    model.to(device)
    return Inference(model, config, device, precision, project.evaluate.batch_size)
