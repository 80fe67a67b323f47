"""Inference throughput: the merged-LoRA classifier vs the plain base model.

After ``merge_lora`` each wrapped layer does one matmul, as the base layer does; what is
left is the LoRALinear wrapper's call. Both models run ``lora_core.inference.predict_logits``
over the same tokenized examples (GLUE dev, 872) at the same precision: one untimed pass
each, then A-B, B-A alternating over the rounds; each speed is the median over the rounds.
The adapter is models/adapter.* when it fits the model, else LoRA with a random B (so the
merge changes the weights).
The last line is ``merged/base=X.XX``, the ratio of examples per second.

    python bench/eval_throughput.py             # 872 examples, 5 rounds: on a quiet machine
    python bench/eval_throughput.py --quick     # smoke test
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common import DEFAULT_MODEL, Timer, describe_machine, median, model_source, sst2_splits
from lora_core.adapter import CONFIG, WEIGHTS, load_trained, read_adapter
from lora_core.config import LoraConfig
from lora_core.device import resolve_precision
from lora_core.inference import load_for_inference, predict_logits
from lora_core.inject import lora_layers, merge_lora
from lora_core.model import build_classifier
from lora_core.pretrained import BASE_DIR, load_base_model, resolve_model_source

LORA = LoraConfig(r=4, alpha=16, dropout=0.1, targets=("query", "value"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, or a hub id in models/base")
    parser.add_argument("--adapter", default="models", help="folder with adapter.*; random if none")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="test = GLUE dev")
    parser.add_argument("--n", type=int, default=872, help="examples (first N of the split)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: --n 256 --rounds 3")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds = 256, 3
    return args


def lora_classifier(args, model_cfg, base_dir) -> tuple[nn.Module, nn.Module, str]:
    """(unmerged, merged, source): the trained adapter when it was trained on this model,
    merged by ``inference.load_for_inference`` as evaluate and predict merge it; else LoRA
    with a random B, merged by hand."""
    folder = Path(args.adapter)
    if (folder / WEIGHTS).exists() and (folder / CONFIG).exists():
        _, config = read_adapter(folder)
        trained_on = Path(resolve_model_source(config.base_model, BASE_DIR)).resolve()
        if trained_on == Path(resolve_model_source(model_cfg.name, base_dir)).resolve():
            merged = load_for_inference(folder).model  # CPU, evaluate's defaults
            return load_trained(folder)[0], merged, f"adapter {folder}/{WEIGHTS}"
    model = build_classifier(model_cfg, LORA, "lora", True, args.seed, base_dir)
    with torch.no_grad():
        for layer in lora_layers(model):
            layer.lora_B.normal_(0.0, 0.02)  # B = 0 would make the merge a no-op
    merged = copy.deepcopy(model)
    merge_lora(merged)
    return model, merged, "random LoRA B (no trained adapter for this model)"


def share_head(base: nn.Module, merged: nn.Module) -> None:
    """Give ``base`` the classifier and pooler of ``merged``: only the encoder layers differ."""
    base.classifier = copy.deepcopy(merged.classifier)
    encoder = getattr(merged, merged.base_model_prefix)
    if getattr(encoder, "pooler", None) is not None:
        getattr(base, base.base_model_prefix).pooler = copy.deepcopy(encoder.pooler)


def check_merge(unmerged: nn.Module, merged: nn.Module, base: nn.Module, probe):
    """(max |merged - unmerged|, max |merged - base|) of logits."""
    cpu = torch.device("cpu")
    a, b, c = (predict_logits(m, probe, 64, cpu, "fp32") for m in (unmerged, merged, base))
    return float(np.abs(b - a).max()), float(np.abs(b - c).max())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device, "--precision")
    model_cfg, base_dir = model_source(args.model)
    split = sst2_splits(model_cfg, base_dir, {args.split: args.n})[args.split]
    unmerged, merged, source = lora_classifier(args, model_cfg, base_dir)
    base = load_base_model(model_cfg.name, base_dir)
    share_head(base, merged)
    to_merged, to_base = check_merge(unmerged, merged, base, split.first(64))
    print(f"machine: {describe_machine()}")
    print(
        f"model {model_cfg.name}; {len(split)} {args.split} examples, batch {args.batch_size}, "
        f"precision {precision}, {args.rounds} rounds; {source}"
    )
    print(
        f"merge check: max |logits merged - unmerged| {to_merged:.2e}, "
        f"max |logits merged - base| {to_base:.2e}"
    )
    models = {"merged": merged, "base": base}
    for model in models.values():  # warm-up: every batch shape once, untimed
        predict_logits(model, split, args.batch_size, device, precision)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for round_ in range(args.rounds):
        order = list(models) if round_ % 2 == 0 else list(models)[::-1]
        for name in order:
            with Timer() as timer:
                predict_logits(models[name], split, args.batch_size, device, precision)
            seconds[name].append(timer.seconds)
    speed = {name: len(split) / median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        rounds = " ".join(f"{s:.2f}" for s in values)
        print(f"{name:<7} {speed[name]:8.1f} ex/s  (median of {len(values)}: {rounds} s)")
    print(f"merged/base={speed['merged'] / speed['base']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
