"""GPU runs: the train + evaluate stage logic, and a bert-base throughput sweep.

    pipeline   train (as stages/train.py) and score test (as stages/evaluate.py: best epoch's
               adapter, merged) from data/tokenized; prints examples/s, peak memory, accuracy
    synthetic  a randomly initialised bert-base (BertConfig() defaults) with our LoRA:
               training examples/s and peak memory at each batch size, eager and compiled

Needs torch, transformers, safetensors, scikit-learn and lora_core on the path (no datasets,
dvc or network). bench/gpu_run.sh runs both modes with device cuda, bf16.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import DEFAULT_MODEL, Timer, model_source
from lora_core.config import Params, load_params
from lora_core.device import resolve_device, resolve_precision
from lora_core.errors import exit_on_user_error
from lora_core.inference import load_for_inference
from lora_core.inject import inject_lora, mark_trainable
from lora_core.loop import train_model
from lora_core.metrics import classification_metrics
from lora_core.tokens import TokenizedSplit, load_tokenized, read_task, split_file
from lora_core.training import train_adapter

SPLIT_NAMES = ("train", "val", "test")
SYNTHETIC_EXAMPLES = 8192  # per timed configuration when --max-examples is not given


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="pipeline", choices=("pipeline", "synthetic"))
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, or a hub id in models/base")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32", "auto"))
    parser.add_argument("--eval-precision", help="pipeline scoring; default: evaluate.precision")
    parser.add_argument("--epochs", type=int, help="pipeline epochs; default: train.epochs")
    parser.add_argument(
        "--max-examples", type=int, help="cap each split; synthetic: examples per run (8192)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--compile", default="both", choices=("off", "on", "both"))
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    parser.add_argument("--progress", action="store_true")
    return parser.parse_args(argv)


def cap(split: TokenizedSplit, n: int | None) -> TokenizedSplit:
    return split if n is None else split.first(n)


def load_splits(folder: str, n: int | None) -> dict[str, TokenizedSplit]:
    return {s: cap(load_tokenized(folder, s), n) for s in SPLIT_NAMES}


def memory_note(device: torch.device) -> str:
    """What peak_memory_mb means on this device (train_model's TrainResult.peak_memory_mb)."""
    return "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process max RSS"


def run_pipeline(args: argparse.Namespace, params: Params) -> dict:
    """The train stage's run (``train_adapter``), then evaluate's merged scoring on test."""
    cfg = dataclasses.replace(
        params.train,
        device=args.device,
        precision=args.precision,
        epochs=args.epochs or params.train.epochs,
    )
    device = resolve_device(cfg.device)
    eval_precision = resolve_precision(
        args.eval_precision or params.evaluate.precision, device, "evaluate.precision"
    )
    splits = load_splits(args.tokenized, args.max_examples)
    model_cfg, base_dir = model_source(args.model, params.model.max_length)
    task = read_task(args.tokenized)
    with tempfile.TemporaryDirectory() as folder:  # the train stage's run, then evaluate's load
        evaluate = dataclasses.replace(params.evaluate, precision=eval_precision)
        run = dataclasses.replace(params, model=model_cfg, train=cfg, evaluate=evaluate)
        models, metrics = Path(folder, "models"), Path(folder, "metrics")
        trained = train_adapter(
            run,
            args.tokenized,
            models,
            metrics,
            __file__,
            progress=args.progress,
            base_dir=base_dir,
            splits=splits,
            live=False,
        )
        inference = load_for_inference(models, run, base_dir)
    result, precision = trained.result, trained.precision
    test = splits["test"]
    with Timer() as timer:
        logits = inference.logits(test)
    scores = classification_metrics(logits, test.labels, task.labels)
    return {
        "mode": "pipeline",
        "model": model_cfg.name,
        "train_examples": len(splits["train"]),
        "epochs": cfg.epochs,
        "precision": precision,
        "eval_precision": eval_precision,
        "train_examples_per_second": round(result.examples / result.train_seconds, 1),
        "train_seconds": round(result.train_seconds, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "peak_memory": memory_note(device),
        "val_accuracy": [round(a, 4) for a in result.val_accuracy],
        "best_epoch": result.best_epoch,
        "test_examples": len(test),
        "eval_examples_per_second": round(len(test) / timer.seconds, 1),
        "test_accuracy": round(scores["accuracy"], 4),
        "test_f1": round(scores.get("f1", scores["macro_f1"]), 4),  # macro past 2 classes
    }


def random_bert_base(params: Params, seed: int) -> torch.nn.Module:
    """bert-base-uncased's shape (BertConfig() defaults), random weights, our LoRA, 2 labels."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(num_labels=2))
    lora = params.lora
    inject_lora(model, lora.targets, lora.r, lora.alpha, lora.dropout, lora.rslora)
    mark_trainable(model, "lora", train_pooler=params.train.train_pooler)
    return model


def synthetic_split(n: int, seed: int) -> TokenizedSplit:
    """Random ids (bert-base vocabulary) with SST-2-like lengths, when no tokenized data."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 67, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(1000, 30000, size=int(offsets[-1])).astype(np.int32)
    return TokenizedSplit(ids, offsets, rng.integers(0, 2, size=n).astype(np.int64), 0)


def run_synthetic(args: argparse.Namespace, params: Params) -> dict:
    """Training examples/s of a random bert-base per (batch size, compile), one epoch each."""
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device, "--precision")
    n = args.max_examples or SYNTHETIC_EXAMPLES
    path = split_file(args.tokenized, "train")
    train = (
        load_tokenized(args.tokenized, "train").first(n) if path.exists() else synthetic_split(n, 0)
    )
    val = train.first(64)  # train_model scores it after the epoch, untimed
    model = random_bert_base(params, params.train.seed)
    compile_modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    runs = []
    for compiled in compile_modes:  # one model throughout: compiled code is reused, not rebuilt
        for batch_size in args.batch_sizes:
            cfg = dataclasses.replace(
                params.train, epochs=1, batch_size=batch_size, compile=compiled, device=args.device
            )
            warm = train.first(3 * batch_size)  # includes compilation when compiled
            with Timer() as timer:
                train_model(model, warm, val, cfg, device, precision, 128, False)
            result = train_model(model, train, val, cfg, device, precision, 128, args.progress)
            runs.append(
                {
                    "batch_size": batch_size,
                    "compile": compiled,
                    "examples_per_second": round(result.examples / result.train_seconds, 1),
                    "warmup_seconds": round(timer.seconds, 1),
                    "peak_memory_mb": round(result.peak_memory_mb, 1),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    data = "data/tokenized train" if path.exists() else "random ids"
    return {
        "mode": "synthetic",
        "model": "bert-base (BertConfig() defaults), random weights",
        "examples": len(train),
        "data": data,
        "precision": precision,
        "peak_memory": memory_note(device),
        "runs": runs,
    }


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    run = run_pipeline if args.mode == "pipeline" else run_synthetic
    out = run(args, params)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
