"""Prediction latency through the Python API (``lora_core.load``, the code path of
`lora-sst2 predict`): the load, one sentence, and GLUE dev's 872 sentences.

Run from inside the project, after `dvc repro` (or give --adapter). Device, precision and
batch come from the project's params.yaml, as for `lora-sst2 predict`. Each figure is the
median over the rounds, after one untimed call; the per-round times are printed too.

    python bench/predict_latency.py             # 20 single sentences, 5 passes over dev
    python bench/predict_latency.py --quick     # smoke test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import Timer, describe_machine, median
from lora_core import load
from lora_core.data import raw_files, read_table

SENTENCE = "a gorgeous , witty , seductive movie ."


def dev_sentences(raw_dir: Path) -> list[str]:
    """GLUE dev's sentences: the validation file data/raw/sst2/ holds (jsonl or tsv)."""
    path = raw_files(raw_dir).get("validation")
    if path is None:
        raise SystemExit(f"no validation file in {raw_dir}/: run `dvc repro fetch` first")
    return read_table(path, ("sentence",), "label").columns[0]


def timed(call, rounds: int) -> list[float]:
    """Seconds per call of ``call()`` over ``rounds`` rounds."""
    seconds = []
    for _ in range(rounds):
        with Timer() as t:
            call()
        seconds.append(t.seconds)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="adapter folder (default: the project's models/)")
    parser.add_argument("--raw-dir", type=Path, default=Path("data/raw/sst2"))
    parser.add_argument("--quick", action="store_true", help="3 single sentences, 1 pass")
    args = parser.parse_args(argv)
    singles, passes = (3, 1) if args.quick else (20, 5)
    texts = dev_sentences(args.raw_dir)
    print(describe_machine())
    with Timer() as t:
        model = load(args.adapter)
    inference = model.inference
    print(f"{inference.device}, {inference.precision}, batch {inference.batch_size}")
    print(f"load: {t.seconds:.2f} s")
    model.predict(texts[:8])  # untimed: first-call allocations
    one = timed(lambda: model.predict([SENTENCE]), singles)
    print(f"one sentence: median {median(one) * 1000:.1f} ms over {singles}")
    dev = timed(lambda: model.predict(texts), passes)
    print(f"{len(texts)} sentences: " + ", ".join(f"{s:.2f}" for s in dev) + " s")
    print(f"dev: median {median(dev):.2f} s, {len(texts) / median(dev):.1f} sentences/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
