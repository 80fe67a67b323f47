"""Shared by the bench scripts: model folders, SST-2 examples tokenized on the fly, subsets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lora_core.config import DataConfig, ModelConfig
from lora_core.data import class_ids, raw_files, read_table, to_examples
from lora_core.device import cpu_model
from lora_core.layer import LoRALinear
from lora_core.pretrained import BASE_DIR, load_tokenizer
from lora_core.splits import split_random
from lora_core.tokens import TokenizedSplit, tokenize

DEFAULT_MODEL = "models/base/sentence-transformers/all-MiniLM-L6-v2"
RAW_DIR = Path("data/raw/sst2")
ROLES = ("train", "validation")  # GLUE train, and GLUE dev: the test split


def model_source(model: str, max_length: int = 128) -> tuple[ModelConfig, Path]:
    """(ModelConfig, base_dir): a folder path, or a hub id under models/base/."""
    if Path(model).is_dir():
        return ModelConfig(name=model, max_length=max_length), Path(".")  # "./<path>" is <path>
    return ModelConfig(name=model, max_length=max_length), BASE_DIR


def sst2_splits(
    model_cfg: ModelConfig, base_dir: Path, sizes: dict[str, int], raw_dir: Path = RAW_DIR
) -> dict[str, TokenizedSplit]:
    """The first ``sizes[name]`` examples of train/val/test, tokenized by the model's tokenizer.

    train and val are the prepare stage's seeded, stratified split of GLUE train; test is
    GLUE dev. Read from the raw files (the hub's train.jsonl and validation.jsonl that fetch
    writes, or GLUE's TSVs in the offline mirror), not data/tokenized, so a bench neither
    depends on nor races a running ``dvc repro``, and always uses the tokenizer of the model
    it times.
    """
    data_cfg = DataConfig()  # val_fraction 0.1, seed 42: what params.yaml ships with
    files = raw_files(raw_dir)
    if any(role not in files for role in ROLES):
        raise SystemExit(f"{raw_dir}/ lacks SST-2's train or validation file: `dvc repro fetch`")
    tables = [read_table(files[role], ("sentence",), "label") for role in ROLES]
    _, ids = class_ids(tables[0], ("negative", "positive"))
    glue_train, glue_dev = (to_examples(t, ids) for t in tables)
    where = files["train"].name
    train, val, _ = split_random(glue_train, data_cfg.val_fraction, data_cfg.seed, where)
    examples = {"train": train, "val": val, "test": glue_dev}
    tokenizer = load_tokenizer(model_cfg.name, base_dir)
    out = {}
    for name, n in sizes.items():
        part = examples[name].subset(range(min(n, len(examples[name]))))
        out[name] = tokenize(tokenizer, part.texts, part.labels, model_cfg.max_length)[0]
    return out


def describe_machine() -> str:
    """One line: CPU model, threads torch uses, torch version."""
    return f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def encoder_weights(model: torch.nn.Module) -> int:
    """Weights of the ``nn.Linear`` layers inside the encoder: every token meets each once."""
    encoder = getattr(model, model.base_model_prefix).encoder
    return sum(m.weight.numel() for m in encoder.modules() if isinstance(m, torch.nn.Linear))


def lora_training_flops(tokens: int, weights: int) -> float:
    """FLOPs of a LoRA training pass over ``tokens`` real tokens: ``4 x weights x tokens``.

    Forward: 2 per weight per token (a multiply and an add). Backward: 2 more for the
    input gradient; the frozen weights need no gradient of their own. LoRA's own matmuls
    (r=4) and attention's token-by-token products (~14 tokens) add under 1%, left out.
    """
    return 4.0 * weights * tokens


def matmul_flops_per_second(dtype: torch.dtype, n: int = 2048, rounds: int = 5) -> float:
    """A square ``n x n`` matmul's FLOP/s in ``dtype``: what this machine does at its best."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # first call: kernel selection, caches
    with Timer() as timer:
        for _ in range(rounds):
            a @ b
    return 2.0 * n**3 * rounds / timer.seconds


def median(values: list[float]) -> float:
    return float(np.median(np.asarray(values)))


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def timed_steps(step, batches) -> float:
    """Seconds for one training ``step`` per batch of ``batches``, one host sync at the end."""
    with Timer() as timer:
        for batch in batches:
            loss = step(batch)
        float(loss)
    return timer.seconds


def main_forward(self: LoRALinear, x: torch.Tensor) -> torch.Tensor:
    """LoRALinear.forward as main had it at db1b10e, before #24: ``B(A(dropout(x))) * scaling``,
    the scaling on the (..., out) product. Trained with element dropout and float32 frozen
    weights, it is main's step then: the baseline of the speed-ups."""
    result = self.base(x)
    if self.merged:
        return result
    update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
    return result + update * self.scaling
