"""Where a training step's time goes, and the default step against main's, finely interleaved.

Classifiers in one process, each built exactly as the train stage does from params.yaml
(``-S key=value`` overrides any param for all of them, as ``dvc exp run -S`` does):

new:  as ``train_model`` trains it: ``lora.dropout_mode`` as the params say and, in bf16/fp16,
      the frozen linear weights stored in that dtype (``lora_core.device.store_frozen_linears``);
old:  element dropout (PEFT's, on x) and float32 frozen weights, which autocast casts again at
      every step, on today's LoRALinear;
main: old with LoRALinear's forward as main had it at db1b10e (the scaling on the product):
      main's step before the speed-ups, the baseline of "x today's";
``--compare KEY=VALUE`` (repeatable) adds new with one more override, e.g.
``--compare 'lora.targets=[query]'``: what half the LoRA modules cost.

Each runs ``--warmup`` untimed steps of the real bucketed batches. Then the ``--steps`` timed
batches go in chunks of ``--chunk``: every classifier trains each chunk in turn, the order
rotating from chunk to chunk, so that this VM's drift (its speed moves by 10 to 40% within
minutes) falls on all of them alike; each speed is its examples over its summed seconds, and
the ratios against ``main`` and ``old`` are printed last. Unless ``--no-profile``, new and old
then run the next ``--profile-steps`` batches under the profiler, printing their ops by self
CPU time and the shares of the two ops the changes remove work from: ``aten::copy_``
(autocast's weight casts) and ``aten::bernoulli_`` (dropout's random draws).

    python bench/train_profile.py                                # the default run's steps
    python bench/train_profile.py --no-profile                   # speeds only
    python bench/train_profile.py -S train.precision=fp32 --no-profile   # the fp32 step
    python bench/train_profile.py --quick                        # smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import torch
import yaml

from common import (
    describe_machine,
    encoder_weights,
    lora_training_flops,
    main_forward,
    matmul_flops_per_second,
    sst2_splits,
    timed_steps,
)
from lora_core.batches import bucket_batches, collate
from lora_core.config import Params
from lora_core.device import (
    COMPUTE_DTYPES,
    resolve_attention,
    resolve_device,
    resolve_precision,
    store_frozen_linears,
    use_attention,
)
from lora_core.layer import LoRALinear
from lora_core.model import classifier_for_training
from lora_core.pretrained import BASE_DIR
from lora_core.readers import load_yaml
from lora_core.step import make_step


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--compare", action="append", default=[], metavar="KEY=VALUE", help="new, one more override"
    )
    parser.add_argument("--n", type=int, default=12000, help="training examples to draw from")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=200, help="timed steps, all interleaved")
    parser.add_argument("--chunk", type=int, default=5, help="steps each classifier runs in turn")
    parser.add_argument("--profile-steps", type=int, default=40, help="profiled steps")
    parser.add_argument("--top", type=int, default=15, help="ops to list")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: n 512, warmup 2, 4 steps, profile 2"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup, args.steps, args.chunk, args.profile_steps = 512, 2, 4, 2, 2
    return args


def with_overrides(raw: dict, overrides: list[str], path: str) -> Params:
    """``raw`` params with ``section.key=value`` overrides, values parsed as YAML."""
    raw = {section: dict(values) for section, values in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, name = key.partition(".")
        if not sep or not name:
            raise SystemExit(f"{item!r}: use section.key=value, e.g. lora.r=8")
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    return Params.from_dict(raw, path)


WATCHED = ("aten::copy_", "aten::bernoulli_")  # autocast's weight casts; dropout's draws


@dataclass
class Variant:
    """One classifier: how it was built, its step function, its timed seconds and examples."""

    label: str
    model: torch.nn.Module
    step: object  # lora_core.step.Step
    forward: object  # LoRALinear.forward while it steps
    stored: int  # frozen linears stored in the compute dtype
    seconds: float = 0.0
    examples: int = 0

    def run(self, batches: list) -> float:
        """Train ``batches`` with this variant's LoRALinear.forward; returns the seconds."""
        current = LoRALinear.forward
        LoRALinear.forward = self.forward
        try:
            return timed_steps(self.step, batches)
        finally:
            LoRALinear.forward = current


def build_variant(label, params: Params, store: bool, forward, device, precision, steps) -> Variant:
    """The classifier as the train stage builds it; frozen linears stored in bf16 if ``store``."""
    model = classifier_for_training(params).to(device)
    use_attention(model, params.model.attention, device)
    stored = store_frozen_linears(model, precision) if store else 0  # 0 in fp32
    torch.manual_seed(params.train.seed)  # dropout, as train_model seeds it
    step = make_step(model, params.train, device, precision, steps)
    model.train()
    return Variant(label, model, step, forward, stored)


def variants(raw: dict, args, device, precision: str, steps: int) -> dict[str, Variant]:
    params = with_overrides(raw, args.overrides, args.params)
    element = with_overrides(raw, [*args.overrides, "lora.dropout_mode=element"], args.params)
    frozen = precision if precision in COMPUTE_DTYPES else "fp32"
    new = f"{params.lora.dropout_mode} dropout, frozen weights in {frozen}"
    specs = {
        "new": (new, params, True, LoRALinear.forward),
        "old": ("element dropout, frozen weights in fp32", element, False, LoRALinear.forward),
        "main": ("main at db1b10e: old, scaling on the product", element, False, main_forward),
    }
    for item in args.compare:
        params_also = with_overrides(raw, [*args.overrides, item], args.params)
        specs[f"new, {item}"] = (f"{new}, {item}", params_also, True, LoRALinear.forward)
    return {
        key: build_variant(label, p, store, forward, device, precision, steps)
        for key, (label, p, store, forward) in specs.items()
    }


def interleaved(runs: dict[str, Variant], batches: list, chunk: int) -> None:
    """Each chunk of ``batches`` through every variant, the order rotating chunk by chunk."""
    keys = list(runs)
    for i, start in enumerate(range(0, len(batches), chunk)):
        part = batches[start : start + chunk]
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            runs[key].seconds += runs[key].run(part)
            runs[key].examples += sum(len(b["labels"]) for b in part)


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
    raw = load_yaml(args.params)
    params = with_overrides(raw, args.overrides, args.params)
    cfg = params.train
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    train = sst2_splits(params.model, BASE_DIR, {"train": args.n})["train"]
    order = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, 1)
    batches = [collate(train, indices) for indices in order]
    need = args.warmup + args.steps + (0 if args.no_profile else args.profile_steps)
    if len(batches) < need:
        raise SystemExit(f"--n {args.n} gives {len(batches)} batches; the run needs {need}")
    runs = variants(raw, args, device, precision, len(batches))
    timed = batches[args.warmup : args.warmup + args.steps]
    for v in runs.values():
        v.run(batches[: args.warmup])
    start = time.perf_counter()
    interleaved(runs, timed, args.chunk)
    tokens = sum(int(b["attention_mask"].sum()) for b in timed)
    dtype = COMPUTE_DTYPES.get(precision, torch.float32)
    peak = matmul_flops_per_second(dtype)
    print(f"machine: {describe_machine()}")
    overrides = " ".join(args.overrides) or "none"
    attention = resolve_attention(params.model.attention, device)
    print(f"precision {precision}, attention {attention}; overrides: {overrides}")
    counts = ", ".join(f"{key} {v.stored}" for key, v in runs.items())
    print(f"frozen linears stored in the compute dtype: {counts}")
    print(
        f"{args.steps} steps ({sum(len(b['labels']) for b in timed)} examples) each, in chunks "
        f"of {args.chunk}, order rotating; {time.perf_counter() - start:.0f} s in all; "
        f"a square matmul in {precision} here: {peak / 1e9:.1f} GFLOP/s"
    )
    weights = encoder_weights(runs["new"].model)
    speed = {}
    for key, v in runs.items():
        speed[key] = v.examples / v.seconds
        achieved = lora_training_flops(tokens, weights) / v.seconds
        print(
            f"{key} ({v.label}): {speed[key]:.1f} examples/s, {tokens / v.seconds:.0f} tokens/s; "
            f"{achieved / 1e9:.1f} GFLOP/s: share {achieved / peak:.2f}"
        )
    if not args.no_profile:
        from torch.profiler import ProfilerActivity, profile

        profiled = batches[args.warmup + args.steps : need]
        for key in ("new", "old"):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                runs[key].run(profiled)
            shares = op_shares(prof, len(profiled))
            print(f"\n{key} under the profiler, {len(profiled)} more steps: {shares}")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    also = "".join(f" new/({k})={speed['new'] / speed[k]:.3f}" for k in runs if "," in k)
    print(
        f"new/main={speed['new'] / speed['main']:.3f} new/old={speed['new'] / speed['old']:.3f} "
        f"old/main={speed['old'] / speed['main']:.3f}{also} (examples/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
