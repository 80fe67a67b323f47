"""`lora-sst2 info`: what an adapter is, how big, and how well the run that made it did."""

from __future__ import annotations

import argparse
from pathlib import Path

from lora_core.adapter import load_trained, weights_file
from lora_core.errors import LoraSst2Error
from lora_core.files import read_json
from lora_core.inject import count_parameters


def adapter_info(adapter_dir: str | Path, metrics_dir: str | Path) -> dict:
    """The adapter's config and sizes, plus every score in ``metrics_dir/eval.json``."""
    model, config = load_trained(adapter_dir)
    trainable, total = count_parameters(model)
    lora = config.to_json()["lora"]
    info = {
        "base_model": config.base_model,
        "mode": config.mode,
        **{k: lora[k] for k in ("r", "alpha", "targets", "dropout", "rslora")},
        "trainable_params": trainable,
        "total_params": total,
        "adapter_bytes": weights_file(adapter_dir).stat().st_size,
    }
    eval_path = Path(metrics_dir) / "eval.json"
    if eval_path.exists():
        scores = read_json(eval_path)
        if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
            raise LoraSst2Error(f"{eval_path} is damaged: run `dvc repro` to write it anew")
        info.update({f"{split}.{k}": v for split in scores for k, v in scores[split].items()})
    return info


def run_info(args: argparse.Namespace) -> int:
    for key, value in adapter_info(args.adapter, args.metrics).items():
        print(f"{key:<20} {value}")
    return 0


def register(subparsers) -> None:
    """Add `info` to the CLI."""
    i = subparsers.add_parser("info", help="describe an adapter and its run's metrics")
    i.add_argument("--adapter", default="models")
    i.add_argument("--metrics", default="metrics")
    i.set_defaults(run=run_info)
