"""Training throughput, one process: our loop vs PEFT with the Hugging Face default recipe.

(a) ours: ``build_classifier`` + ``train_model`` with the library's defaults: length-bucketed
    batches, precision auto, ``LoraConfig()``'s default LoRA dropout mode, and the frozen
    linear weights stored in the compute precision (``train_model``'s default
    ``frozen_in_compute_dtype=True``, ``lora_core.device.store_frozen_linears``);
(o) ours as before: the same, but element dropout (PEFT's, on x) and the frozen weights kept
    float32 (``dropout_mode="element"``, ``frozen_in_compute_dtype=False``), so that autocast
    casts them again at every step: (a) vs (o) is what the two changes are worth;
(t) main's step at db1b10e: (o), with LoRALinear's forward as it was there (the scaling
    multiplied the (..., out) product; now it multiplies B): a/t is the step against main's;
(b) PEFT LoRA, shuffled ``DataLoader`` + ``DataCollatorWithPadding``, float32, plain loop
    (what ``Trainer`` does by default: random batches, each padded to its longest);
(c) PEFT LoRA with our batches and our precision: the difference to (a) is the LoRA layer.

Same model, examples, seed and hyperparameters for all (LoRA r=4, alpha=16 on query/value,
dropout 0.1, pooler and classifier trained, batch 32, lr 2e-3, AdamW with weight decay 0.01
on matrices, 6% linear warmup then linear decay, clip 1.0, one epoch). First every batch
shape of every run goes once through a throwaway model, untimed; then each run builds a
fresh model and is warmed up with two untimed steps on a copy of it; the runs go in
``--runs`` order, then reversed, alternating over ``--repeats`` rounds (abco, ocba, abco,
...), and each speed is the median. Validation accuracy is float32 for all: (a) and (o) load
their trained tensors into a fresh float32 classifier (as evaluate loads the adapter), since
(a)'s trained model holds bf16 frozen weights that a float32 pass cannot multiply.

Then, for (a) and (o), the achieved FLOP/s (``common.lora_training_flops``: 4 x the encoder's
linear weights x the real tokens, over the timed seconds) beside a square matmul's FLOP/s in
(a)'s precision, measured in the same run: the share of the machine's peak that our training
uses. The last line holds the ratios of examples per second of the runs that ran:
``a/b=X.XX a/c=Y.YY a/o=Z.ZZ a/t=W.WW``.

    python bench/train_throughput.py                       # n=4000, val 1000, 3 rounds, abcot
    python bench/train_throughput.py --runs ao --repeats 3 # ours new vs old, no PEFT (faster)
    python bench/train_throughput.py --quick               # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common import (
    DEFAULT_MODEL,
    Timer,
    describe_machine,
    encoder_weights,
    lora_training_flops,
    main_forward,
    matmul_flops_per_second,
    median,
    model_source,
    sst2_splits,
)
from lora_core.batches import bucket_batches, collate
from lora_core.config import LoraConfig, ModelConfig, TrainConfig
from lora_core.device import autocast, resolve_precision, use_attention
from lora_core.inference import predict_logits
from lora_core.inject import count_parameters, load_lora_state_dict
from lora_core.layer import LoRALinear
from lora_core.loop import train_model
from lora_core.metrics import accuracy
from lora_core.model import build_classifier
from lora_core.pretrained import load_base_model, load_tokenizer
from lora_core.tokens import TokenizedSplit

WARMUP_STEPS = 2
RUNS = "abcot"
LABELS = {
    "a": "(a) ours: {mode} dropout, frozen weights in {precision}",
    "b": "(b) PEFT: shuffled DataLoader + collator, fp32",
    "c": "(c) PEFT: bucketed, {precision}",
    "o": "(o) ours as before: element dropout, fp32 frozen weights",
    "t": "(t) main at db1b10e: (o), scaling on the output",
}
# dropout_mode left out: (a) gets LoraConfig's default, whatever it is
LORA = LoraConfig(r=4, alpha=16, dropout=0.1, targets=("query", "value"))
OURS = {  # key: (LoRA config, train_model's frozen_in_compute_dtype or None for its default)
    "a": (LORA, None),
    "o": (dataclasses.replace(LORA, dropout_mode="element"), False),
    "t": (dataclasses.replace(LORA, dropout_mode="element"), False),
}


@contextlib.contextmanager
def forward_of(key: str):
    """LoRALinear.forward as run ``key`` needs it, restored afterwards."""
    current = LoRALinear.forward
    LoRALinear.forward = main_forward if key == "t" else current
    try:
        yield
    finally:
        LoRALinear.forward = current


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="folder, or a hub id in models/base")
    parser.add_argument("--n", type=int, default=4000, help="training examples (first N)")
    parser.add_argument("--n-val", type=int, default=1000, help="validation examples (first N)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; speeds are medians")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--runs", default=RUNS, help=f"which runs, in this order then reversed (default {RUNS})"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: n 256, val 128, 1 round")
    args = parser.parse_args(argv)
    if not args.runs or set(args.runs) - set(RUNS) or len(set(args.runs)) != len(args.runs):
        parser.error(f"--runs {args.runs!r}: use each of the letters {RUNS} at most once")
    if args.quick:
        args.n, args.n_val, args.repeats = 256, 128, 1
    return args


def train_config(seed: int) -> TrainConfig:
    """The pipeline's defaults, for one epoch on the CPU."""
    return TrainConfig(
        mode="lora", epochs=1, batch_size=32, lr=2e-3, train_pooler=True, seed=seed, device="cpu"
    )


def run_ours(model, train, val, cfg, device, precision, frozen_in_compute_dtype):
    """(a) and (o): lora_core.loop.train_model; its clock stops before its validation pass.

    ``frozen_in_compute_dtype`` None leaves train_model's default. Returns the TrainResult.
    """
    kwargs = {}
    if frozen_in_compute_dtype is not None:
        kwargs["frozen_in_compute_dtype"] = frozen_in_compute_dtype
    warm = train.first(WARMUP_STEPS * cfg.batch_size)
    warm_model = copy.deepcopy(model)
    train_model(warm_model, warm, val.first(8), cfg, device, precision, 128, False, **kwargs)
    # train_model scores val after the epoch, untimed; a few examples keep that short, the
    # accuracy reported is scored in float32 afterwards, the same way for every run.
    return train_model(model, train, val.first(32), cfg, device, precision, 128, False, **kwargs)


def ours_classifier(s: Setup, lora: LoraConfig) -> nn.Module:
    """Our classifier, with the attention the train stage picks."""
    model = build_classifier(s.model_cfg, lora, "lora", True, s.cfg.seed, s.base_dir)
    use_attention(model, "auto", s.device)  # as the train stage does
    return model


def peft_classifier(model_cfg, base_dir, seed: int) -> nn.Module:
    """PEFT LoRA on the same base and head init as ours; pooler and classifier train."""
    import peft

    torch.manual_seed(seed)  # the classifier head, drawn as in build_classifier
    base = load_base_model(model_cfg.name, base_dir)
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=LORA.r,
        lora_alpha=LORA.alpha,
        target_modules=list(LORA.targets),
        lora_dropout=LORA.dropout,
        modules_to_save=["classifier", "pooler"],
    )
    return peft.get_peft_model(base, config)


def hf_loader(split: TokenizedSplit, tokenizer, batch_size: int, seed: int):
    """Trainer's default data path: random order, each batch padded to its longest."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    features = [
        {"input_ids": split.ids[a:b].tolist(), "labels": int(y)}
        for a, b, y in zip(split.offsets[:-1], split.offsets[1:], split.labels)
    ]
    generator = torch.Generator().manual_seed(seed)
    collator = DataCollatorWithPadding(tokenizer)
    return DataLoader(
        features, batch_size=batch_size, shuffle=True, collate_fn=collator, generator=generator
    )


class Bucketed:
    """Our data path as an iterable of batches: bucket_batches + collate, built per pass."""

    def __init__(self, split: TokenizedSplit, cfg: TrainConfig, epoch: int = 1) -> None:
        self.split = split  # train_model's first epoch is epoch 1: the same batches as (a)
        self.batches = bucket_batches(
            split.lengths, cfg.batch_size, cfg.bucket_chunk, cfg.seed, epoch
        )

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (collate(self.split, indices) for indices in self.batches)


def plain_loop(model, batches, cfg, device, precision, max_steps=None) -> tuple[float, int, int]:
    """A Trainer-like loop with our optimizer settings: (seconds, examples, token slots)."""
    torch.manual_seed(cfg.seed)  # dropout
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    total = len(batches)
    warmup = int(total * cfg.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)),
    )
    model.train()
    examples = padded_tokens = steps = 0
    running = torch.zeros(())
    with Timer() as timer:
        for batch in batches:
            with autocast(precision, device):
                out = model(**batch)  # labels in the batch: the model computes the loss
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            running += out.loss.detach().float()
            examples += len(batch["labels"])
            padded_tokens += batch["input_ids"].numel()
            steps += 1
            if steps == max_steps:
                break
    if not torch.isfinite(running):
        raise RuntimeError("PEFT run diverged: loss is not finite")
    return timer.seconds, examples, padded_tokens


def run_peft(model, batches, cfg, device, precision) -> tuple[float, int, int]:
    """(b) and (c): warm up on a copy of the model, then one timed epoch."""
    plain_loop(copy.deepcopy(model), batches, cfg, device, precision, max_steps=WARMUP_STEPS)
    return plain_loop(model, batches, cfg, device, precision)


def padded_size(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    """Token slots a pass computes: batch size x longest example, summed over batches."""
    return int(sum(len(b) * lengths[b].max() for b in batches))


@dataclass
class Setup:
    """What every run shares: data, config, model source."""

    train: TokenizedSplit
    val: TokenizedSplit
    cfg: TrainConfig
    model_cfg: ModelConfig
    base_dir: Path
    tokenizer: object  # the model's fast tokenizer, for DataCollatorWithPadding
    precision: str
    device: torch.device = torch.device("cpu")


@dataclass
class Run:
    seconds: float
    examples: int
    padding: float  # share of computed token slots that are padding
    accuracy: float
    trainable: int
    flops: float  # lora_training_flops of the epoch's real tokens


def warm_shapes(s: Setup, runs: str) -> int:
    """One untimed forward/backward per batch shape any of ``runs`` will see, in its precision.

    A first matmul at a new shape costs extra on the CPU (bf16 kernels are generated per
    shape); without this the first run would pay for the shapes the later ones reuse.
    """
    model = build_classifier(s.model_cfg, LORA, "lora", True, s.cfg.seed, s.base_dir).train()
    shapes = set()
    if set(runs) - {"b"}:  # (a), (o), (c): bucketed batches in our precision
        shapes |= {(tuple(b["input_ids"].shape), s.precision) for b in Bucketed(s.train, s.cfg)}
    if "b" in runs:
        hf = hf_loader(s.train, s.tokenizer, s.cfg.batch_size, s.cfg.seed)
        shapes |= {(tuple(b["input_ids"].shape), "fp32") for b in hf}
    for (batch, width), precision in sorted(shapes):
        ids = torch.full((batch, width), 1000)
        with autocast(precision, s.device):
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        logits.float().sum().backward()
    return len(shapes)


def one_run(key: str, s: Setup) -> Run:
    """Build a fresh model, train one timed epoch the way ``key`` says, score val in fp32."""
    with forward_of(key):
        return _one_run(key, s)


def _one_run(key: str, s: Setup) -> Run:
    cfg, train = s.cfg, s.train
    if key in OURS:
        lora, frozen_in_compute_dtype = OURS[key]
        model = ours_classifier(s, lora)
        result = run_ours(model, train, s.val, cfg, s.device, s.precision, frozen_in_compute_dtype)
        seconds, examples = result.train_seconds, result.examples
        slots = padded_size(train.lengths, Bucketed(train, cfg).batches)
        # The trained model may hold bf16 frozen weights: score its trained tensors (one
        # epoch: best_state is the end state) on a fresh float32 classifier instead.
        scored = ours_classifier(s, lora)
        load_lora_state_dict(scored, result.best_state)
    else:
        model = peft_classifier(s.model_cfg, s.base_dir, cfg.seed)
        if key == "b":
            batches, precision = hf_loader(train, s.tokenizer, cfg.batch_size, cfg.seed), "fp32"
        else:
            batches, precision = Bucketed(train, cfg), s.precision
        seconds, examples, slots = run_peft(model, batches, cfg, s.device, precision)
        scored = model
    logits = predict_logits(scored, s.val, 128, s.device, "fp32")  # same for every run
    padding = 1 - int(train.lengths.sum()) / slots
    trainable = count_parameters(model)[0]
    flops = lora_training_flops(int(train.lengths.sum()), encoder_weights(model))
    return Run(seconds, examples, padding, accuracy(logits, s.val.labels), trainable, flops)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # PEFT calls deprecated HF APIs
    device = torch.device("cpu")
    model_cfg, base_dir = model_source(args.model)
    splits = sst2_splits(model_cfg, base_dir, {"train": args.n, "val": args.n_val})
    tokenizer = load_tokenizer(model_cfg.name, base_dir)
    precision = resolve_precision("auto", device)
    s = Setup(
        train=splits["train"],
        val=splits["val"],
        cfg=train_config(args.seed),
        model_cfg=model_cfg,
        base_dir=base_dir,
        tokenizer=tokenizer,
        precision=precision,
    )
    labels = {
        key: LABELS[key].format(mode=LORA.dropout_mode, precision=precision) for key in args.runs
    }
    order = f"{args.runs} then {args.runs[::-1]}" if args.repeats > 1 else args.runs
    print(f"machine: {describe_machine()}")
    print(
        f"model {model_cfg.name}; {len(s.train)} train / {len(s.val)} val examples; batch "
        f"{s.cfg.batch_size}, LoRA r={LORA.r} alpha={LORA.alpha:g} on query/value, dropout "
        f"{LORA.dropout}, lr {s.cfg.lr:g}, 1 epoch; our precision 'auto' = {precision}; "
        f"{args.repeats} round(s), order {order}"
    )
    with Timer() as timer:
        shapes = warm_shapes(s, args.runs)
    print(f"warm-up: {shapes} batch shapes, once each, untimed ({timer.seconds:.0f} s)")
    runs: dict[str, list[Run]] = {key: [] for key in args.runs}
    for round_ in range(args.repeats):
        for key in args.runs if round_ % 2 == 0 else args.runs[::-1]:
            runs[key].append(one_run(key, s))
    width = max(len(label) for label in labels.values())
    speed = {}
    for key, label in labels.items():
        speeds = [r.examples / r.seconds for r in runs[key]]
        speed[key], last = median(speeds), runs[key][-1]
        each = " ".join(f"{v:.1f}" for v in speeds)
        accs = " ".join(f"{r.accuracy:.4f}" for r in runs[key])
        print(
            f"{label:<{width}} {speed[key]:8.1f} ex/s (median of: {each}; {last.examples} ex, "
            f"padding {last.padding:.1%})  val accuracy {accs}"
        )
    counts = ", ".join(f"({k}) {runs[k][0].trainable:,}" for k in args.runs)
    print(f"trainable parameters: {counts}")
    ours = [key for key in args.runs if key in OURS]
    if ours:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        peak = matmul_flops_per_second(dtype)
        for key in sorted(ours):
            achieved = median([r.flops / r.seconds for r in runs[key]])
            print(
                f"({key}) achieved {achieved / 1e9:.1f} GFLOP/s (4 x encoder weights x real "
                f"tokens / s); a {precision} 2048x2048 matmul here: {peak / 1e9:.1f} GFLOP/s; "
                f"share {achieved / peak:.2f}"
            )
    ratios = [
        f"a/{k}={speed['a'] / speed[k]:.2f}" for k in sorted(speed) if "a" in speed and k != "a"
    ]
    if ratios:
        print(" ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
