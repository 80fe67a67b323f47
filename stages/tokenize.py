"""Stage tokenize: prepared splits -> unpadded token ids per split (safetensors), the task
(class names, text columns) and how many texts max_length cut."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lora_core.config import ModelConfig, load_params
from lora_core.data import SPLITS, DataError, read_examples, read_summary
from lora_core.errors import exit_on_user_error
from lora_core.files import atomic_dir, write_json
from lora_core.pretrained import check_tokenizer_fits, load_tokenizer
from lora_core.tokens import TASK, length_summary, save_tokenized, tokenize

NOTE_PERCENT = 5  # print a note when max_length cuts more than this share of a split
PAIR_MIN = 5  # the shortest max_length that keeps a token of each text of a pair


def tokenize_splits(cfg: ModelConfig, prepared: str, out_dir: str) -> dict[str, dict]:
    """Tokenize every split with ``cfg.name``'s fast tokenizer; return each split's lengths."""
    tokenizer = load_tokenizer(cfg.name)
    check_tokenizer_fits(cfg, tokenizer)
    names, columns = read_summary(prepared)
    if len(columns) == 2 and cfg.max_length < PAIR_MIN:  # else the tokenizer does not cut
        raise DataError(
            f"params.yaml: model.max_length = {cfg.max_length} is not allowed for sentence "
            f"pairs: at least {PAIR_MIN} ([CLS] a [SEP] b [SEP])"
        )
    if len(columns) == 2 and cfg.truncation != "head":
        raise DataError(
            f"params.yaml: model.truncation = {cfg.truncation} is not allowed for sentence "
            "pairs: use head (a pair cuts its longer text first)"
        )
    lengths = {}
    with atomic_dir(out_dir) as tmp:
        for name in SPLITS:
            ex = read_examples(Path(prepared) / f"{name}.jsonl", names)
            split, full = tokenize(
                tokenizer, ex.texts, ex.labels, cfg.max_length, ex.pairs, cfg.truncation
            )
            meta = {"model": cfg.name, "max_length": str(cfg.max_length), **cut_by(cfg)}
            save_tokenized(tmp, name, split, meta)
            lengths[name] = length_summary(split, full, cfg.max_length)
        task = {"labels": list(names), "text_columns": list(columns)}
        task = {**task, "max_length": cfg.max_length, **cut_by(cfg), "lengths": lengths}
        write_json(tmp / TASK, task)
    return lengths


def cut_by(cfg: ModelConfig) -> dict[str, str]:
    """``truncation`` for task.json, only when it is not ``head``: every file tokenize wrote
    before the param stays byte-identical, and a missing key means head."""
    return {} if cfg.truncation == "head" else {"truncation": cfg.truncation}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--out", default="data/tokenized")
    args = parser.parse_args(argv)
    cfg = load_params(args.params).model
    lengths = tokenize_splits(cfg, args.prepared, args.out)
    print(
        "tokens: "
        + ", ".join(f"{k} {v['tokens']}" for k, v in lengths.items())
        + f" -> {args.out}/"
    )
    for name, v in lengths.items():
        if v["truncated_percent"] > NOTE_PERCENT:
            print(
                f"note: model.max_length = {cfg.max_length} cuts {v['truncated']} of {v['rows']} "
                f"{name} texts ({v['truncated_percent']}%; median length {v['length_p50']}, "
                f"99th percentile {v['length_p99']} tokens): see {args.out}/{TASK}"
            )


if __name__ == "__main__":
    sys.exit(main())
