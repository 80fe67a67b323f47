"""What ``train.compile: true`` costs and buys on this machine: compile time, recompiles, speed.

``train.compile: true`` makes ``lora_core.step.make_step`` wrap the model in
``torch.compile(model, dynamic=True)``. This times it against the eager model, in one process,
on the real classifier trained as ``train_model`` trains it by default (the frozen linear
weights stored in the compute precision, ``LoraConfig``'s default LoRA dropout mode, the
pipeline's TrainConfig defaults) over one length-bucketed epoch of the first ``--n`` SST-2
training examples:

1. eager: one untimed epoch (every batch shape's kernels), then batch 1 timed (median of 3);
2. compiled: the same step, timed: compile seconds = that first step minus the eager one;
   then the rest of the epoch, counting the recompiles dynamo does on the way
   (``torch._dynamo.utils.counters``, with their reasons from the ``recompiles`` log);
3. steady state: one epoch each, eager and compiled alternating (eager first, then compiled
   first) over ``--repeats`` rounds; examples/s are medians.

Compiled code is cached on disk (inductor's FX graph and AOTAutograd caches), and a second
run of the same graphs compiles much faster. By default the probe compiles cold, into a fresh
temporary cache folder, removed afterwards: what a first ``dvc exp run`` with compile pays.
``--warm-cache`` uses the usual cache folder (``TORCHINDUCTOR_CACHE_DIR``, else
/tmp/torchinductor_$USER): what a rerun pays once that folder holds these graphs.

The one-time cost of compiling is the first compiled epoch minus a steady compiled epoch:
the first-step compile plus every recompile. Training for T minutes eagerly takes
T / speedup + cost compiled, so compiling pays off for eager trainings longer than
cost / (1 - 1/speedup); with speedup <= 1, never. The last line is ``compiled/eager=X.XX``.

    python bench/compile_probe.py               # n=2000, 3 rounds: a quiet machine
    python bench/compile_probe.py --quick       # smoke test: n=256, 2 rounds
    python bench/compile_probe.py --warm-cache  # after one run: the cost with a warm cache
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import warnings

import torch

from common import (
    DEFAULT_MODEL,
    Timer,
    describe_machine,
    median,
    model_source,
    sst2_splits,
    timed_steps,
)
from lora_core.batches import bucket_batches, collate
from lora_core.config import LoraConfig, TrainConfig
from lora_core.device import resolve_precision, store_frozen_linears, use_attention
from lora_core.model import build_classifier
from lora_core.step import make_step


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, or a hub id in models/base")
    parser.add_argument("--n", type=int, default=2000, help="training examples (first N)")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state rounds; medians")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--warm-cache",
        action="store_true",
        help="use inductor's usual on-disk cache, not a fresh one",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: n 256, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats = 256, 2
    return args


class RecompileLog(logging.Handler):
    """Collects dynamo's ``recompiles`` log records (its reasons), instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def install(self) -> None:
        import torch._dynamo.guards  # noqa: F401  (registers the artifact's logger)

        torch._logging.set_logs(recompiles=True)
        artifact = logging.getLogger("torch._dynamo.guards.__recompiles")
        artifact.propagate = False  # kept here, not printed to stderr
        artifact.addHandler(self)


def compiles() -> int:
    """Frames dynamo has compiled so far: the first compile and every recompile."""
    return int(torch._dynamo.utils.counters["frames"]["ok"])


def break_even_minutes(cost_s: float, speedup: float) -> float | None:
    """Eager training minutes above which compiling pays: T = T / speedup + cost."""
    if speedup <= 1:
        return None
    return cost_s / (1 - 1 / speedup) / 60


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.warm_cache:
        return probe(args, "the usual one, maybe warm")
    cache = tempfile.mkdtemp(prefix="compile_probe_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # read when inductor first compiles
    try:
        return probe(args, "a fresh one: cold")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def reason(message: str, limit: int = 240) -> str:
    """The guard failures of one ``recompiles`` log message, on one line."""
    lines = [line.strip() for line in message.splitlines()[1:]]
    text = " ".join(line for line in lines if line.startswith("- ")) or " ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def probe(args: argparse.Namespace, cache: str) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    device = torch.device("cpu")
    model_cfg, base_dir = model_source(args.model)
    train = sst2_splits(model_cfg, base_dir, {"train": args.n})["train"]
    cfg = TrainConfig(epochs=1, device="cpu", seed=args.seed)  # the pipeline's defaults
    lora = LoraConfig()  # the library's defaults, dropout_mode included
    precision = resolve_precision("auto", device)
    order = bucket_batches(train.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, 1)
    batches = [collate(train, indices) for indices in order]
    examples = sum(len(b["labels"]) for b in batches)

    def build(compile_: bool):
        """The classifier and step as train_model makes them, with train.compile = compile_."""
        model = build_classifier(
            model_cfg, lora, cfg.mode, cfg.train_pooler, cfg.seed, base_dir, cfg.model_dropout
        )
        use_attention(model, "auto", device)
        stored = store_frozen_linears(model, precision)
        torch.manual_seed(cfg.seed)
        step_cfg = dataclasses.replace(cfg, compile=compile_)
        step = make_step(model, step_cfg, device, precision, len(batches))
        model.train()
        return step, stored

    widths = sorted({b["input_ids"].shape[1] for b in batches})
    sizes = sorted({b["input_ids"].shape[0] for b in batches})
    print(f"machine: {describe_machine()}")
    print(
        f"model {model_cfg.name}; {examples} examples, {len(batches)} bucketed batches of "
        f"{cfg.batch_size} ({len(widths)} widths, {widths[0]} to {widths[-1]} tokens; batch "
        f"sizes {', '.join(map(str, sizes))}); precision {precision}; LoRA dropout_mode "
        f"{lora.dropout_mode}; {args.repeats} steady round(s)"
    )
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    print(f"inductor cache: {cache} ({cache_dir()})")

    eager, stored = build(False)
    with Timer() as timer:
        timed_steps(eager, batches)  # untimed for the result: every shape's kernels, once
    first_eager_epoch = timer.seconds
    eager_step = median([timed_steps(eager, batches[:1]) for _ in range(3)])
    print(
        f"eager: {stored} frozen linears stored in {precision}; first epoch "
        f"{first_eager_epoch:.1f} s (kernels per shape), then batch 1 in {eager_step:.3f} s "
        "(median of 3)"
    )

    log = RecompileLog()
    log.install()
    compiled, _ = build(True)
    torch._dynamo.utils.counters.clear()
    first_step = timed_steps(compiled, batches[:1])
    after_first = compiles()
    compile_s = first_step - eager_step
    steps_s = []
    recompiled_at = []  # (step, width, batch size) where a step compiled again
    for i, batch in enumerate(batches[1:], start=2):
        before = compiles()
        steps_s.append(timed_steps(compiled, [batch]))
        if compiles() > before:
            recompiled_at.append((i, batch["input_ids"].shape[1], len(batch["labels"])))
    first_compiled_epoch = first_step + sum(steps_s)
    recompiles = compiles() - after_first
    graph_breaks = sum(torch._dynamo.utils.counters["graph_break"].values())
    print(
        f"compiled: first step {first_step:.1f} s, so compile {compile_s:.1f} s ({after_first} "
        f"frame(s), {graph_breaks} graph break(s)); the rest of the epoch "
        f"{sum(steps_s):.1f} s with {recompiles} recompile(s)"
    )
    if recompiles:
        limit = torch._dynamo.config.recompile_limit
        print(f"  (dynamo's recompile_limit is {limit} per function: past it, it runs eagerly)")
    for i, width, size in recompiled_at:
        print(f"  recompiled at step {i}: batch {size} x {width} tokens")
    for message in log.messages:
        print(f"  reason: {reason(message)}")

    seconds = {"eager": [], "compiled": []}
    steps = {"eager": eager, "compiled": compiled}
    before, seen = compiles(), len(log.messages)
    for round_ in range(args.repeats):
        for key in ("eager", "compiled") if round_ % 2 == 0 else ("compiled", "eager"):
            seconds[key].append(timed_steps(steps[key], batches))
    late = compiles() - before
    speed = {key: examples / median(values) for key, values in seconds.items()}
    for key, values in seconds.items():
        each = " ".join(f"{examples / s:.1f}" for s in values)
        print(f"{key:<8} {speed[key]:8.1f} ex/s steady (median of: {each})")
    if late:
        print(f"  note: {late} more compile(s) during the steady rounds")
        for message in log.messages[seen:]:
            print(f"  reason: {reason(message)}")
    speedup = speed["compiled"] / speed["eager"]
    cost = first_compiled_epoch - median(seconds["compiled"])
    minutes = break_even_minutes(cost, speedup)
    verdict = "never" if minutes is None else f"{minutes:.1f} min"
    print(
        f"one-time cost: {cost:.1f} s (first compiled epoch {first_compiled_epoch:.1f} s minus a "
        f"steady one {median(seconds['compiled']):.1f} s: the first-step compile and "
        f"{recompiles} recompile(s))"
    )
    if minutes is None:
        print("compile never pays for itself here: the compiled steps are not faster")
    else:
        print(
            f"compile pays for itself in trainings longer than {minutes:.1f} min of eager time "
            f"(cost / (1 - 1/speedup) / 60)"
        )
    print(
        f"compiled/eager={speedup:.2f} compile_s={compile_s:.1f} recompiles={recompiles} "
        f"break_even={verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
