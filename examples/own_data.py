"""Two "own data" folders made from SST-2, for README's worked examples (demonstrations,
not benchmarks): a review CSV with three string classes, and a sentence-pair TSV.

- data/raw/reviews/{train,test}.csv: columns review,sentiment. A review is one SST-2
  sentence (positive or negative) or a positive and a negative sentence on two lines
  (mixed), so quoted fields hold commas and newlines. Three classes.
- data/raw/pairs/{train,test}.tsv: columns premise,hypothesis,label: two sentences, labelled
  both positive (positive), both negative (negative) or one of each (mixed).

Train rows come from GLUE train's whole sentences (phrases inside another row left out),
test rows from GLUE dev, so no test sentence was trained on.

    python examples/own_data.py    # needs SST-2 in data/raw/sst2/: the hub's train.jsonl and
                                   # validation.jsonl (`dvc repro fetch`), or GLUE's TSVs
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from lora_core.data import class_ids, raw_files, read_table, to_examples
from lora_core.splits import inner_phrases

RAW = Path("data/raw")


def sentences(role: str) -> dict[int, list[str]]:
    """The whole sentences (rows inside no other row) of SST-2's ``role`` file (train, or
    validation: GLUE dev), by 0/1 label; whichever file data/raw/sst2/ holds for it."""
    path = raw_files(RAW / "sst2").get(role)
    if path is None:
        raise SystemExit(f"no {role} file in {RAW / 'sst2'}/: run `dvc repro fetch` first")
    table = read_table(path, ("sentence",), "label")
    examples = to_examples(table, class_ids(table, ("negative", "positive"))[1])
    inner = inner_phrases([tuple(t.split()) for t in examples.texts])
    out: dict[int, list[str]] = {0: [], 1: []}
    for text, label in zip(examples.texts, examples.labels):
        if tuple(text.split()) not in inner and len(text.split()) >= 4:
            out[label].append(text.strip())
    return out


def reviews(by_label: dict[int, list[str]], n: int, rng: random.Random) -> list[list[str]]:
    rows = []
    for i in range(n):
        kind = ("negative", "positive", "mixed")[i % 3]
        if kind == "mixed":
            pair = [rng.choice(by_label[0]), rng.choice(by_label[1])]
            rng.shuffle(pair)
            rows.append(["\n".join(pair), kind])
        else:
            rows.append([rng.choice(by_label[kind == "positive"]), kind])
    return rows


def pairs(by_label: dict[int, list[str]], n: int, rng: random.Random) -> list[list[str]]:
    rows = []
    for i in range(n):
        a, b = {0: (0, 0), 1: (1, 1), 2: (0, 1)}[i % 3]
        first, second = rng.choice(by_label[a]), rng.choice(by_label[b])
        if rng.random() < 0.5:
            first, second = second, first
        rows.append([first, second, ("negative", "positive", "mixed")[i % 3]])
    return rows


def write(path: Path, header: list[str], rows: list[list[str]], sep: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> int:
    rng = random.Random(0)
    train, dev = sentences("train"), sentences("validation")
    write(RAW / "reviews/train.csv", ["review", "sentiment"], reviews(train, 15000, rng), ",")
    write(RAW / "reviews/test.csv", ["review", "sentiment"], reviews(dev, 900, rng), ",")
    header = ["premise", "hypothesis", "label"]
    write(RAW / "pairs/train.tsv", header, pairs(train, 15000, rng), "\t")
    write(RAW / "pairs/test.tsv", header, pairs(dev, 900, rng), "\t")
    print("wrote data/raw/reviews/{train,test}.csv and data/raw/pairs/{train,test}.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
