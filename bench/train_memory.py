"""Peak memory of training with the frozen linear weights stored in bf16, and without.

Each variant trains in its own process (peak RSS is per process): one epoch of the pipeline's
defaults in bf16 on the first ``--n`` SST-2 training examples, the same model, data and seed;
``frozen_in_compute_dtype`` is the only difference. Prints each peak as ``metrics/train.json``
reports it (``peak_memory_mb``: the process's peak RSS, MiB) and the difference.

    python bench/train_memory.py            # n=3000
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch

from common import DEFAULT_MODEL, describe_machine, model_source, sst2_splits
from lora_core.config import LoraConfig, TrainConfig
from lora_core.device import use_attention
from lora_core.loop import train_model
from lora_core.model import build_classifier


def child(stored: bool, n: int, model: str) -> None:
    """One training; prints its peak_memory_mb."""
    model_cfg, base_dir = model_source(model)
    splits = sst2_splits(model_cfg, base_dir, {"train": n, "val": 64})
    classifier = build_classifier(model_cfg, LoraConfig(), "lora", False, 42, base_dir)
    device = torch.device("cpu")
    use_attention(classifier, "auto", device)
    cfg = TrainConfig(epochs=1, device="cpu")
    result = train_model(
        classifier, splits["train"], splits["val"].first(64), cfg, device, "bf16",
        progress=False, frozen_in_compute_dtype=stored,
    )  # fmt: skip
    print(f"{result.peak_memory_mb:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="training examples (first N)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--child", choices=["0", "1"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child == "1", args.n, args.model)
        return 0
    print(f"machine: {describe_machine()}; bf16, 1 epoch, {args.n} examples")
    peaks = {}
    for stored in ("0", "1"):
        command = [sys.executable, __file__, "--child", stored, "--n", str(args.n)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        peaks[stored] = float(out.split()[-1])
    print(f"frozen linears in fp32 (before): peak_memory_mb {peaks['0']:.1f}")
    print(f"frozen linears in bf16 (now):    peak_memory_mb {peaks['1']:.1f}")
    print(f"difference {peaks['1'] - peaks['0']:+.1f} MiB ({peaks['1'] / peaks['0'] - 1:+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
