"""Stage tokenize: prepared TSVs -> unpadded token ids per split (safetensors)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lora_core.config import ModelConfig, load_params
from lora_core.data import SPLITS, read_glue_tsv
from lora_core.errors import exit_on_user_error
from lora_core.files import atomic_dir
from lora_core.pretrained import check_tokenizer_fits, load_tokenizer
from lora_core.tokens import save_tokenized, tokenize


def tokenize_splits(cfg: ModelConfig, prepared: str, out_dir: str) -> dict[str, int]:
    """Tokenize every split with ``cfg.name``'s fast tokenizer; return tokens per split."""
    tokenizer = load_tokenizer(cfg.name)
    check_tokenizer_fits(cfg, tokenizer)
    totals = {}
    with atomic_dir(out_dir) as tmp:
        for name in SPLITS:
            examples = read_glue_tsv(Path(prepared) / f"{name}.tsv")
            split = tokenize(tokenizer, examples.sentences, examples.labels, cfg.max_length)
            meta = {"model": cfg.name, "max_length": str(cfg.max_length)}
            save_tokenized(tmp, name, split, meta)
            totals[name] = int(split.offsets[-1])
    return totals


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--out", default="data/tokenized")
    args = parser.parse_args(argv)
    totals = tokenize_splits(load_params(args.params).model, args.prepared, args.out)
    print("tokens: " + ", ".join(f"{k} {v}" for k, v in totals.items()) + f" -> {args.out}/")


if __name__ == "__main__":
    sys.exit(main())
