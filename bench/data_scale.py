"""Data scaling: prepare + tokenize on 100,000 and 1,000,000 synthetic rows.

Each size runs in a fresh process (so its peak memory is its own): a folder with train.csv
(3 string classes, short texts of 6 to 17 words, a quarter of them quoted with a comma
inside) and test.csv (a tenth of the rows); prepare carves val with the random split (the
stratified, seeded split every dataset without SST-2's phrases gets), then tokenize runs
with the model's tokenizer. Prints rows/s and peak memory (max RSS) per size, then
``time ratio 1M/100k = X`` (goal: at most 12 for 10x the rows) on the last line.

    python bench/data_scale.py                       # 100k and 1M rows: about 3 minutes
    python bench/data_scale.py --sizes 20000 200000  # quicker

``--long N`` measures instead that one long text costs no more memory than the cap allows:
N rows as CSV, JSON Lines and Parquet, each once as is and once with one row's text
replaced by a long one (90,000 characters, or 99,990 in Parquet: near the 100,000 cap),
each in a fresh process; one table of peak memory per run, and each long run's peak over
its format's normal one (flat: about 1); last, a CSV with every 100th text long, whose
peak the tokenizer's chunks of at most 2,000,000 characters bound.

    python bench/data_scale.py --long 20000
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


LONG = {".csv": 90_000, ".jsonl": 90_000, ".parquet": 99_990}  # characters; the cap: 100,000
MANY = 100  # the last run: every 100th text long


def convert(path: Path, suffix: str, long: int, every: int = 0) -> None:
    """Rewrite the CSV ``path`` as ``suffix`` (its stem kept), its middle row's text (or
    every ``every``-th row's) ``long`` characters of words when ``long``."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if long:
        words = " ".join(random.Random(3).choices(WORDS, k=long // 3))
        rows = range(0, len(frame), every) if every else [len(frame) // 2]
        frame.loc[list(rows), "text"] = words[:long].rstrip()
    path.unlink()
    out = path.with_suffix(suffix)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    elif suffix == ".jsonl":
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(out, index=False)


def one_size(n: int, model: str, work: Path, kind: str = "") -> dict:
    """Make the folder, then time prepare and tokenize in this process. ``kind`` (a
    format, ``+long`` for one long text) rewrites train in that format."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from stages.prepare import prepare
    from stages.tokenize import tokenize_splits

    from lora_core.config import DataConfig

    raw = work / "raw"
    raw.mkdir(parents=True)
    write_rows(raw / "train.csv", n, seed=1)
    write_rows(raw / "test.csv", n // 10, seed=2)
    if kind:
        suffix, _, long = kind.partition("+")
        every = MANY if long == "many" else 0
        convert(raw / "train.csv", suffix, LONG[suffix] if long else 0, every)
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
    parser.add_argument("--long", type=int, metavar="N", help="rows of the long-text runs")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's size
    parser.add_argument("--kind", default="", help=argparse.SUPPRESS)  # a child's format
    args = parser.parse_args(argv)
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one_size(args.one, args.model, Path(tmp), args.kind)))
        return 0
    print(describe_machine())
    if args.long:
        return long_texts(args.long, args.model)
    results = []
    for n in args.sizes:
        r = child(n, args.model)
        results.append(r)
        print(
            f"{n:>9,} rows: prepare {r['prepare_s']:.1f} s, prepare+tokenize {r['total_s']:.1f} s "
            f"({n / r['total_s']:,.0f} rows/s), peak memory {r['peak_mb']:,.0f} MiB"
        )
    small, big = results
    ratio = big["total_s"] / small["total_s"]
    print(f"time ratio {big['rows'] // 1000}k/{small['rows'] // 1000}k = {ratio:.2f}")
    return 0


def child(n: int, model: str, kind: str = "") -> dict:
    """``one_size`` in a fresh process, so that its peak memory is its own."""
    cmd = [sys.executable, __file__, "--one", str(n), "--model", model, "--kind", kind]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def long_texts(n: int, model: str) -> int:
    """The table of ``--long``: each format as is and with one long text."""
    print(f"{'train file':<40} {'rows':>7} {'seconds':>8} {'peak MiB':>9} {'/ normal':>9}")
    normal_csv = 0.0
    for suffix in LONG:
        normal = None
        for long in (False, True):
            r = child(n, model, suffix + ("+long" if long else ""))
            normal = normal or r["peak_mb"]
            normal_csv = normal if suffix == ".csv" else normal_csv
            what = f"one text of {LONG[suffix]:,} chars" if long else "as is"
            row(f"train{suffix}, {what}", n, r, normal)
    r = child(n, model, ".csv+many")
    row(f"train.csv, every {MANY}th text 90,000", n, r, normal_csv)
    return 0


def row(what: str, n: int, r: dict, normal: float) -> None:
    print(
        f"{what:<40} {n:>7,} {r['total_s']:>8.1f} {r['peak_mb']:>9,.0f} "
        f"{r['peak_mb'] / normal:>9.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
