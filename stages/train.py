"""Stage train: tokenized splits -> LoRA adapter, training metrics and curves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lora_core.adapter import WEIGHTS, adapter_config, save_adapter
from lora_core.config import Params, load_params
from lora_core.data import load_tokenized
from lora_core.errors import exit_on_user_error
from lora_core.inject import count_parameters
from lora_core.io import atomic_write_text, write_json
from lora_core.loop import resolve_device, resolve_precision, train_model
from lora_core.model import BASE_DIR, build_classifier


def train(params: Params, tokenized: str, progress: bool = True, base_dir: str = BASE_DIR):
    """Build the model from params and train it; returns (model, result, device, precision)."""
    cfg = params.train
    splits = {
        name: load_tokenized(Path(tokenized) / f"{name}.safetensors") for name in ("train", "val")
    }
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model = build_classifier(
        params.model,
        params.lora,
        cfg.mode,
        cfg.train_pooler,
        cfg.seed,
        base_dir=base_dir,
        model_dropout=cfg.model_dropout,
    )
    result = train_model(
        model,
        splits["train"],
        splits["val"],
        cfg,
        device,
        precision,
        eval_batch_size=params.evaluate.batch_size,
        progress=progress,
    )
    return model, result, device, precision


def train_metrics(params: Params, model, result, device, precision, adapter_bytes: int) -> dict:
    """metrics/train.json: sizes and outcome first, then the run's timing (machine-dependent)."""
    trainable, total = count_parameters(model)
    return {
        "mode": params.train.mode,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100 * trainable / total, 4),
        "adapter_bytes": adapter_bytes,
        "epochs": params.train.epochs,
        "best_epoch": result.best_epoch,
        "best_val_accuracy": round(max(result.val_accuracy), 6),
        "device": device.type,
        "precision": precision,
        "train_examples_seen": result.examples,
        "train_seconds": round(result.train_seconds, 1),
        "examples_per_second": round(result.examples / result.train_seconds, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
    }


def _csv(rows: list[dict], columns: list[str]) -> str:
    lines = [",".join(columns)] + [
        ",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in columns)
        for r in rows
    ]
    return "\n".join(lines) + "\n"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--models", default="models")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    model, result, device, precision = train(params, args.tokenized, not args.no_progress)
    # Everything is computed before the first write, so a failure above leaves no output.
    config = adapter_config(params.model, params.lora, params.train.mode, params.train.train_pooler)
    save_adapter(args.models, result.best_state, config)
    size = (Path(args.models) / WEIGHTS).stat().st_size
    metrics = Path(args.metrics)
    val = [
        {"epoch": e, "step": step, "val_accuracy": round(a, 6)}
        for e, (step, a) in enumerate(zip(result.epoch_end_steps, result.val_accuracy), start=1)
    ]
    atomic_write_text(
        metrics / "train_curve.csv", _csv(result.curve, ["step", "epoch", "loss", "lr"])
    )
    atomic_write_text(metrics / "val_curve.csv", _csv(val, ["epoch", "step", "val_accuracy"]))
    write_json(
        metrics / "train.json", train_metrics(params, model, result, device, precision, size)
    )
    print(f"best epoch {result.best_epoch}: val accuracy {max(result.val_accuracy):.4f}")


if __name__ == "__main__":
    sys.exit(main())
