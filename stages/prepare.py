"""Stage prepare: the raw files in data.dir -> train/val/test JSON Lines + summary.json."""

from __future__ import annotations

import argparse
import sys

from lora_core.config import DataConfig, load_params
from lora_core.data import (
    check_class_count,
    class_ids,
    label_counts,
    read_table,
    to_examples,
    write_examples,
)
from lora_core.errors import exit_on_user_error
from lora_core.files import atomic_dir, write_json
from lora_core.hub import ensure_raw
from lora_core.readers import sha256
from lora_core.splits import (
    assign,
    check_stratifiable,
    dedupe,
    in_train,
    leak_lines,
    pair_text_in_train,
)


def prepare(cfg: DataConfig, out_dir: str) -> dict:
    """Read and validate the raw files, split, and write ``out_dir`` whole or not at all."""
    raw = ensure_raw(cfg.dir, cfg.source, cfg.config)
    tables = {role: read_table(p, cfg.text_columns, cfg.label_column) for role, p in raw.items()}
    check_class_count(tables["train"], cfg.label_column, cfg.max_classes)
    names, ids = class_ids(tables["train"], cfg.labels)
    files = {role: to_examples(table, ids) for role, table in tables.items()}
    if not {"validation", "test"} <= set(files):  # val (or test too) is carved from train
        carves = 1 if {"validation", "test"} & set(files) else 2
        check_stratifiable(tables["train"], files["train"], carves)
    splits, sources, kind, dropped = assign(files, {r: p.name for r, p in raw.items()}, cfg)
    leaks = in_train(splits)
    if cfg.dedupe:
        splits = dedupe(splits, leaks, sources)
    summary = {
        "labels": list(names),
        "text_columns": list(cfg.text_columns),
        "split": kind,
        "sources": sources,
        "splits": {
            name: {"rows": len(ex), "labels": label_counts(ex, names)}
            for name, ex in splits.items()
        },
        "dropped_train_phrases": dropped,
        "also_in_train": {name: len(rows) for name, rows in leaks.items()},
        "raw_sha256": {path.name: sha256(path) for path in raw.values()},
    }
    if len(cfg.text_columns) == 2:  # single texts: SST-2's summary stays as it was
        summary["pair_text_in_train"] = pair_text_in_train(splits)
    with atomic_dir(out_dir) as tmp:
        for name, examples in splits.items():
            write_examples(tmp / f"{name}.jsonl", examples, names)
        write_json(tmp / "summary.json", summary)
    return summary


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/prepared")
    args = parser.parse_args(argv)
    cfg = load_params(args.params).data
    summary = prepare(cfg, args.out)
    if cfg.labels is not None and tuple(summary["labels"]) != cfg.labels:
        print(
            f"data.labels {list(cfg.labels)} does not name every label of the train file, "
            f"so its labels are the classes in sorted order: {', '.join(summary['labels'])}"
        )
    for line in leak_lines(summary, cfg.dedupe):
        print(line)
    rows = ", ".join(f"{k} {v['rows']}" for k, v in summary["splits"].items())
    classes = len(summary["labels"])
    kind = summary["split"]
    how = "the folder's own splits" if kind == "none" else f"{kind} split"  # none: nothing carved
    print(f"prepared {rows} ({classes} classes, {how}) -> {args.out}/")


if __name__ == "__main__":
    sys.exit(main())
