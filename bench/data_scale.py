"""Data scaling: prepare + tokenize on 100,000 and 1,000,000 synthetic rows.

Each size runs in a fresh process (so its peak memory is its own): a folder with train.csv
(3 string classes, short texts of 6 to 17 words, a quarter of them quoted with a comma
inside) and test.csv (a tenth of the rows); prepare carves val with the random split (the
stratified, seeded split every dataset without SST-2's phrases gets), then tokenize runs
with the model's tokenizer. Prints rows/s and peak memory (max RSS) per size, then
``time ratio 1M/100k = X`` (goal: at most 12 for 10x the rows) on the last line.

    python bench/data_scale.py                       # 100k and 1M rows: about 3 minutes
    python bench/data_scale.py --sizes 20000 200000  # quicker
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_MODEL, describe_machine, model_source

WORDS = [f"w{i}" for i in range(2000)] + ["good", "bad", "fine", "film", "plot", "the", "a"]
CLASSES = ("negative", "neutral", "positive")


def write_rows(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(n):
            words = rng.choices(WORDS, k=rng.randint(6, 17))
            if i % 4 == 0:
                words.insert(3, "a, b")
            writer.writerow([" ".join(words), CLASSES[i % 3]])


def one_size(n: int, model: str, work: Path) -> dict:
    """Make the folder, then time prepare and tokenize in this process."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from stages.prepare import prepare
    from stages.tokenize import tokenize_splits

    from lora_core.config import DataConfig

    raw = work / "raw"
    raw.mkdir(parents=True)
    write_rows(raw / "train.csv", n, seed=1)
    write_rows(raw / "test.csv", n // 10, seed=2)
    data = DataConfig(dir=str(raw), text_columns=("text",), split="random")
    model_cfg, _ = model_source(model)  # a folder path loads as itself
    start = time.perf_counter()
    prepare(data, str(work / "prepared"))
    prepared = time.perf_counter() - start
    tokenize_splits(model_cfg, str(work / "prepared"), str(work / "tokenized"))
    total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rows": n, "prepare_s": prepared, "total_s": total, "peak_mb": peak_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's size
    args = parser.parse_args(argv)
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one_size(args.one, args.model, Path(tmp))))
        return 0
    print(describe_machine())
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--model", args.model]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{n:>9,} rows: prepare {r['prepare_s']:.1f} s, prepare+tokenize {r['total_s']:.1f} s "
            f"({n / r['total_s']:,.0f} rows/s), peak memory {r['peak_mb']:,.0f} MiB"
        )
    small, big = results
    ratio = big["total_s"] / small["total_s"]
    print(f"time ratio {big['rows'] // 1000}k/{small['rows'] // 1000}k = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
