"""The LoRA dropout default, settled by paired seeds (#30): `token` against `element` on the
full pipeline, each pair trained with the same seed on the same machine, one after the other.

    python bench/dropout_seeds.py --run            # runs what OUT lacks, then the table
    python bench/dropout_seeds.py                  # the table from OUT alone

Each run is `dvc exp run -n dropout-<mode>-s<seed> -S lora.dropout_mode=<mode> -S
train.seed=<seed>` in this workspace (commit first: dvc exp needs one), so `dvc exp show`
lists them too, and its metrics/eval.json, metrics/train.json and test predictions are kept
under OUT/<mode>-s<seed>/. The rule (#30): `token` stays the default only if its paired mean
test accuracy is within 0.25 points of `element`'s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.stats

from lora_core.stats import flips, mcnemar_exact

MODES = ("token", "element")
MARGIN = 0.0025  # token's paired mean may trail element's by at most this (0.25 points)
KEPT = ("metrics/eval.json", "metrics/train.json", "metrics/predictions/test.csv")


def run(mode: str, seed: int, out: Path) -> None:
    """One experiment, then its outputs copied to OUT/<mode>-s<seed>/ (only when it ran)."""
    name = f"dropout-{mode}-s{seed}"
    args = ["-S", f"lora.dropout_mode={mode}", "-S", f"train.seed={seed}"]
    print(f"running {name}", flush=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["dvc", "exp", "run", "-n", name, *args], check=True, env=env)
    folder = out / f"{mode}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in KEPT:
        shutil.copy(path, folder / Path(path).name)


def predictions(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(folder / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return tuple(np.array([int(r[k]) for r in rows]) for k in ("label", "predicted"))


def table(seeds: list[int], out: Path, untimed: frozenset[int] = frozenset()) -> str:
    lines = [
        "| seed | token: test accuracy | element: test accuracy | token − element (points) "
        "| McNemar p | train s (token / element) |",
        "|---|---|---|---|---|---|",
    ]
    scores: dict[str, list[float]] = {m: [] for m in MODES}
    speed: list[float] = []  # token's train seconds over element's, timed seeds only
    for seed in seeds:
        folders = {m: out / f"{m}-s{seed}" for m in MODES}
        if not all((f / "eval.json").is_file() for f in folders.values()):
            lines.append(f"| {seed} | – | – | – | – | not run |")
            continue
        read = {
            m: {n: json.loads((f / n).read_text()) for n in ("eval.json", "train.json")}
            for m, f in folders.items()
        }
        acc = {m: read[m]["eval.json"]["test"]["accuracy"] for m in MODES}
        secs = [read[m]["train.json"]["train_seconds"] for m in MODES]
        (labels, token), (element_labels, element) = (predictions(folders[m]) for m in MODES)
        if not np.array_equal(labels, element_labels):
            raise SystemExit(f"seed {seed}: token's and element's test rows differ: not paired")
        p = mcnemar_exact(*flips(element, token, labels))
        for m in MODES:
            scores[m].append(acc[m])
        diff = 100 * (acc["token"] - acc["element"])
        times = f"{secs[0]:.0f} / {secs[1]:.0f}"
        if seed in untimed:
            times = f"({times}, CPU shared)"
        else:
            speed.append(secs[0] / secs[1])
        lines.append(
            f"| {seed} | {acc['token']:.4f} | {acc['element']:.4f} | {diff:+.2f} | {p:.3f} "
            f"| {times} |"
        )
    n = len(scores["token"])
    if n < 2:
        return "\n".join(lines)
    mean = {m: statistics.mean(v) for m, v in scores.items()}
    sd = {m: statistics.stdev(v) for m, v in scores.items()}
    diffs = [100 * (t - e) for t, e in zip(scores["token"], scores["element"])]
    lines.append(
        f"| mean ± sd ({n} seeds) | {mean['token']:.4f} ± {sd['token']:.4f} "
        f"| {mean['element']:.4f} ± {sd['element']:.4f} | {statistics.mean(diffs):+.2f} "
        f"± {statistics.stdev(diffs):.2f} | | |"
    )
    gap = mean["token"] - mean["element"]
    half = scipy.stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / n**0.5
    verdict = "token stays the default" if gap >= -MARGIN else "element becomes the default"
    lines.append(
        f"\npaired mean gap {100 * gap:+.2f} points, 95% t interval "
        f"[{100 * gap - half:+.2f}, {100 * gap + half:+.2f}] (rule: mean >= -0.25): {verdict}"
    )
    if speed:
        lines.append(
            f"token's train time / element's: {statistics.mean(speed):.3f} "
            f"(mean of {len(speed)} timed pairs, {min(speed):.3f} to {max(speed):.3f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 42])
    parser.add_argument("--out", type=Path, default=Path("bench/out/dropout_seeds"))
    parser.add_argument("--run", action="store_true", help="run the experiments OUT lacks")
    parser.add_argument(
        "--untimed",
        type=int,
        nargs="*",
        default=[],
        help="seeds whose runs shared the CPU with other work: their times are shown in "
        "brackets and left out of the speed ratio",
    )
    args = parser.parse_args(argv)
    if args.run:
        for seed in args.seeds:
            for mode in MODES:
                if not (args.out / f"{mode}-s{seed}" / "eval.json").is_file():
                    run(mode, seed, args.out)
    print(table(args.seeds, args.out, frozenset(args.untimed)))


if __name__ == "__main__":
    sys.exit(main())
