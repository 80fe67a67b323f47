"""Where a training step's time goes: examples/s and the top ops of ``torch.profiler``.

Builds the classifier exactly as the train stage does from params.yaml (``-S key=value``
overrides any param, as ``dvc exp run -S`` does), runs ``--warmup`` untimed steps of the
real bucketed batches, then ``--steps`` timed ones, and, unless ``--no-profile``, the same
number again under the profiler, printing the ops by self CPU time.

    python bench/train_profile.py                                # the default run's steps
    python bench/train_profile.py -S model.attention=sdpa        # one knob changed
    python bench/train_profile.py --steps 120 --no-profile       # a speed only
"""

from __future__ import annotations

import argparse
import sys

import torch
import yaml

from common import (
    Timer,
    describe_machine,
    encoder_weights,
    lora_training_flops,
    matmul_flops_per_second,
    sst2_splits,
)
from lora_core.config import Params
from lora_core.files import load_yaml
from lora_core.loop import make_step
from lora_core.model import classifier_for_training
from lora_core.pretrained import BASE_DIR
from lora_core.runtime import resolve_device, resolve_precision, use_attention
from lora_core.tokens import bucket_batches, collate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--n", type=int, default=8000, help="training examples to draw from")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=40, help="timed (and profiled) steps")
    parser.add_argument("--top", type=int, default=15, help="ops to list")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    return parser.parse_args(argv)


def load_with_overrides(path: str, overrides: list[str]) -> Params:
    """params.yaml with ``section.key=value`` overrides, values parsed as YAML."""
    raw = load_yaml(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or not name:
            raise SystemExit(f"-S {item!r}: use section.key=value, e.g. -S lora.r=8")
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    return Params.from_dict(raw, path)


def dtype_name(dtype: torch.dtype) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = load_with_overrides(args.params, args.overrides)
    cfg = params.train
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    train = sst2_splits(params.model, BASE_DIR, {"train": args.n})["train"]
    model = classifier_for_training(params).to(device)
    attention = use_attention(model, params.model.attention, device)
    order = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, 1)
    batches = [collate(train, indices) for indices in order]
    need = args.warmup + args.steps * (1 if args.no_profile else 2)
    if len(batches) < need:
        raise SystemExit(f"--n {args.n} gives {len(batches)} batches; the run needs {need}")
    step = make_step(model, cfg, device, precision, len(batches))
    model.train()
    it = iter(batches)
    for _ in range(args.warmup):
        step(next(it))
    timed = [next(it) for _ in range(args.steps)]
    with Timer() as timer:
        for batch in timed:
            loss = step(batch)
        float(loss)  # one host sync at the end
    examples = sum(len(b["labels"]) for b in timed)
    tokens = sum(int(b["attention_mask"].sum()) for b in timed)
    achieved = lora_training_flops(tokens, encoder_weights(model)) / timer.seconds
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    peak = matmul_flops_per_second(dtype)
    print(f"machine: {describe_machine()}")
    overrides = " ".join(args.overrides) or "none"
    print(f"precision {precision}, attention {attention}; overrides: {overrides}")
    print(
        f"{args.steps} steps: {examples / timer.seconds:.1f} examples/s, "
        f"{tokens / timer.seconds:.0f} tokens/s ({timer.seconds:.2f} s); "
        f"{achieved / 1e9:.1f} GFLOP/s of a {dtype_name(dtype)} matmul's {peak / 1e9:.1f}: "
        f"share {achieved / peak:.2f}"
    )
    if args.no_profile:
        return 0
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            loss = step(next(it))
        float(loss)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
