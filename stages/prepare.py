"""Stage prepare: GLUE SST-2 TSVs -> seeded, stratified train/val split + GLUE dev as test."""

from __future__ import annotations

import argparse
import sys

from lora_core.config import DataConfig, load_params
from lora_core.data import (
    ensure_raw,
    read_glue_tsv,
    sentence_split,
    sha256,
    split_train_val,
    summarize,
    write_glue_tsv,
)
from lora_core.errors import exit_on_user_error
from lora_core.files import atomic_dir, write_json


def prepare(cfg: DataConfig, out_dir: str) -> dict:
    """Read and validate the raw TSVs, split, and write ``out_dir`` whole or not at all."""
    raw = ensure_raw(cfg.dir, cfg.source, cfg.config)
    glue_train, glue_dev = read_glue_tsv(raw["train"]), read_glue_tsv(raw["dev"])
    args = (glue_train, cfg.val_fraction, cfg.seed, cfg.max_train_examples)
    if cfg.split == "sentence":
        train, val, dropped = sentence_split(*args)
    else:
        (train, val), dropped = split_train_val(*args), 0
    splits = {"train": train, "val": val, "test": glue_dev}
    summary = {
        "split": cfg.split,
        "splits": summarize(splits),
        "dropped_train_phrases": dropped,
        "raw_sha256": {name: sha256(path) for name, path in raw.items()},
    }
    with atomic_dir(out_dir) as tmp:
        for name, examples in splits.items():
            write_glue_tsv(tmp / f"{name}.tsv", examples)
        write_json(tmp / "summary.json", summary)
    return summary


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args(argv)
    summary = prepare(load_params(args.params).data, args.out)
    rows = ", ".join(f"{k} {v['rows']}" for k, v in summary["splits"].items())
    print(f"prepared {rows} -> {args.out}/")


if __name__ == "__main__":
    sys.exit(main())
