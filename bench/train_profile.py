"""Where a training step's time goes, new vs old: examples/s and ``torch.profiler``'s top ops.

Two classifiers, in one process, each built exactly as the train stage does from params.yaml
(``-S key=value`` overrides any param, as ``dvc exp run -S`` does):

new: as ``train_model`` trains it: ``lora.dropout_mode`` as the params say (params.yaml, else
     ``LoraConfig``'s default) and, in bf16/fp16, the frozen linear weights stored in that
     dtype (``lora_core.runtime.store_frozen_linears``);
old: the behaviour before: element dropout (PEFT's, on x) and float32 frozen weights, which
     autocast casts again at every step.

Each runs ``--warmup`` untimed steps of the real bucketed batches; then both time the same
``--steps`` batches, new-old then old-new over ``--repeats`` rounds (speeds are medians), and
the ratio new/old is printed. Unless ``--no-profile``, each then runs the next ``--steps``
batches under the profiler, printing its ops by self CPU time and the shares of the two ops
the changes remove work from: ``aten::copy_`` (autocast's weight casts) and
``aten::bernoulli_`` (dropout's random draws).

    python bench/train_profile.py                                # the default run's steps
    python bench/train_profile.py -S model.attention=sdpa        # one knob changed
    python bench/train_profile.py --steps 120 --no-profile       # speeds only
    python bench/train_profile.py --quick                        # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass

import torch
import yaml

from common import (
    describe_machine,
    encoder_weights,
    lora_training_flops,
    matmul_flops_per_second,
    median,
    sst2_splits,
    timed_steps,
)
from lora_core.config import Params
from lora_core.files import load_yaml
from lora_core.loop import make_step
from lora_core.model import classifier_for_training
from lora_core.pretrained import BASE_DIR
from lora_core.runtime import (
    resolve_device,
    resolve_precision,
    store_frozen_linears,
    use_attention,
)
from lora_core.tokens import bucket_batches, collate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--n", type=int, default=8000, help="training examples to draw from")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=40, help="timed (and profiled) steps")
    parser.add_argument("--top", type=int, default=15, help="ops to list")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; speeds are medians")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: n 512, warmup 2, steps 4, 1 round"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup, args.steps, args.repeats = 512, 2, 4, 1
    return args


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


WATCHED = ("aten::copy_", "aten::bernoulli_")  # autocast's weight casts; dropout's draws


def dtype_name(dtype: torch.dtype) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"


@dataclass
class Variant:
    """One of the two classifiers: how it was built, its step function, its timings."""

    label: str
    model: torch.nn.Module
    step: object  # lora_core.loop._Step
    stored: int  # frozen linears stored in the compute dtype
    seconds: list[float] = dataclasses.field(default_factory=list)


def build_variant(
    label: str, params: Params, store: bool, device, precision: str, steps_per_epoch: int
) -> tuple[Variant, str]:
    """The classifier as the train stage builds it; frozen linears stored in bf16 if ``store``."""
    model = classifier_for_training(params).to(device)
    attention = use_attention(model, params.model.attention, device)
    # what train_model does by default; 0 in fp32
    stored = store_frozen_linears(model, precision) if store else 0
    torch.manual_seed(params.train.seed)  # dropout, as train_model seeds it
    step = make_step(model, params.train, device, precision, steps_per_epoch)
    model.train()
    return Variant(label, model, step, stored), attention


def op_shares(prof, steps: int) -> str:
    """Self-CPU-time shares and calls per step of the WATCHED ops."""
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    by_name = {e.key: e for e in events}
    parts = []
    for name in WATCHED:
        e = by_name.get(name)
        share = e.self_cpu_time_total / total if e else 0.0
        calls = e.count / steps if e else 0.0
        parts.append(f"{name} {share:.1%} of self CPU time ({calls:.0f} calls/step)")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = load_with_overrides(args.params, args.overrides)
    cfg = params.train
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    train = sst2_splits(params.model, BASE_DIR, {"train": args.n})["train"]
    order = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, 1)
    batches = [collate(train, indices) for indices in order]
    need = args.warmup + args.steps * (1 if args.no_profile else 2)
    if len(batches) < need:
        raise SystemExit(f"--n {args.n} gives {len(batches)} batches; the run needs {need}")
    frozen_dtype = precision if precision in ("bf16", "fp16") else "fp32"
    old_params = dataclasses.replace(
        params, lora=dataclasses.replace(params.lora, dropout_mode="element")
    )
    new_label = f"{params.lora.dropout_mode} dropout, frozen weights in {frozen_dtype}"
    variants = {}
    for key, label, variant_params, store in (
        ("new", new_label, params, True),
        ("old", "element dropout, frozen weights in fp32", old_params, False),
    ):
        variants[key], attention = build_variant(
            label, variant_params, store, device, precision, len(batches)
        )
    warmup = batches[: args.warmup]
    timed = batches[args.warmup : args.warmup + args.steps]
    profiled = batches[args.warmup + args.steps : need]
    for v in variants.values():
        for batch in warmup:
            v.step(batch)
    for round_ in range(args.repeats):
        for key in ("new", "old") if round_ % 2 == 0 else ("old", "new"):
            variants[key].seconds.append(timed_steps(variants[key].step, timed))
    examples = sum(len(b["labels"]) for b in timed)
    tokens = sum(int(b["attention_mask"].sum()) for b in timed)
    weights = encoder_weights(variants["new"].model)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    peak = matmul_flops_per_second(dtype)
    print(f"machine: {describe_machine()}")
    overrides = " ".join(args.overrides) or "none"
    print(f"precision {precision}, attention {attention}; overrides: {overrides}")
    counts = ", ".join(f"{key} {v.stored}" for key, v in variants.items())
    print(f"frozen linears stored in {frozen_dtype}: {counts}")
    print(
        f"{args.steps} steps ({examples} examples) per round, {args.repeats} round(s), order "
        f"new-old then old-new; medians; a {dtype_name(dtype)} matmul here: "
        f"{peak / 1e9:.1f} GFLOP/s"
    )
    from torch.profiler import ProfilerActivity, profile

    speed = {}
    for key, v in variants.items():
        seconds = median(v.seconds)
        speed[key] = examples / seconds
        achieved = lora_training_flops(tokens, weights) / seconds
        each = " ".join(f"{examples / t:.1f}" for t in v.seconds)
        print(
            f"\n{key} ({v.label}): {speed[key]:.1f} examples/s (of: {each}), "
            f"{tokens / seconds:.0f} tokens/s ({seconds:.2f} s); {achieved / 1e9:.1f} GFLOP/s: "
            f"share {achieved / peak:.2f}"
        )
        if args.no_profile:
            continue
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            timed_steps(v.step, profiled)
        print(
            f"{key} under the profiler, the next {args.steps} steps: {op_shares(prof, args.steps)}"
        )
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    print(f"new/old={speed['new'] / speed['old']:.2f} (examples/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
