"""`lora-sst2 report`: experiments from `dvc exp show --json` as a table and a plot.

Experiments that differ only in their seeds are one row: the mean, the sample standard
deviation and n of each score, so a difference can be weighed against seed noise.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from lora_core.commands.dvcrun import dvc_json
from lora_core.errors import LoraSst2Error
from lora_core.files import atomic_write_text
from lora_core.plots import figure, save_figure
from lora_core.readers import read_json

SEEDS = ("train.seed", "data.seed")
SCORES = ("test_accuracy", "val_accuracy")


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; lists as tuples, so a row's params can be hashed."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def _row(name: str, data: dict | None) -> dict | None:
    """One experiment's params and scores, or None when it has no metrics."""
    metrics = (data or {}).get("metrics") or {}
    train = (metrics.get("metrics/train.json") or {}).get("data")
    scores = (metrics.get("metrics/eval.json") or {}).get("data")
    if not train or not scores:
        return None
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    return {
        "name": name,
        "params": _flat(params),
        "trainable_params": train["trainable_params"],
        "test_accuracy": scores["test"]["accuracy"],
        "val_accuracy": scores["val"]["accuracy"],
        "train_seconds": train.get("train_seconds"),
        "adapter_bytes": train.get("adapter_bytes"),
    }


def experiment_rows(show: list[dict]) -> list[dict]:
    """Every experiment with metrics, and its baseline commit (first); the workspace is skipped.

    The first commit listed (HEAD) always has a row; an older one (``--all-commits``) only
    when experiments are based on it, so plain commits do not crowd the table.
    """
    rows = []
    commits = [top for top in show if top.get("rev") != "workspace"]
    for position, top in enumerate(commits):
        experiments = top.get("experiments") or []
        if position > 0 and not experiments:
            continue
        baseline = _row(top.get("name") or top["rev"][:7], top.get("data"))
        rows += [baseline] if baseline else []
        for exp in experiments:
            for rev in exp.get("revs") or []:
                row = _row(rev.get("name") or rev["rev"][:7], rev.get("data"))
                rows += [row] if row else []
    return rows


def describe(params: dict[str, Any], baseline: dict[str, Any]) -> str:
    """What an experiment is: its mode, its rank, and every other param that differs from
    the baseline's (seeds aside)."""
    mode = params.get("train.mode", "lora")
    parts = [f"lora r={params.get('lora.r')}" if mode == "lora" else mode]
    skip = {"train.mode", "lora.r", *SEEDS}
    for key, value in sorted(params.items()):
        if key in skip or baseline.get(key) == value or (mode != "lora" and key[:5] == "lora."):
            continue
        shown = list(value) if isinstance(value, tuple) else value
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def _spread(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def group_rows(rows: list[dict]) -> list[dict]:
    """One entry per set of experiments equal but for their seeds: mean, std and n."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple(sorted((k, v) for k, v in row["params"].items() if k not in SEEDS))
        groups.setdefault(key, []).append(row)
    baseline = rows[0]["params"] if rows else {}
    out = []
    for members in groups.values():
        first = members[0]
        out.append(
            {
                "experiment": describe(first["params"], baseline),
                "n": len(members),
                **{name: _spread([m[name] for m in members]) for name in SCORES},
                "trainable_params": first["trainable_params"],
                "train_seconds": statistics.fmean(m["train_seconds"] or 0 for m in members),
                "adapter_bytes": first["adapter_bytes"],
            }
        )
    return sorted(out, key=lambda g: (g["trainable_params"], g["experiment"]))


def _score(value: tuple[float, float | None]) -> str:
    mean, std = value
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def markdown_table(groups: list[dict]) -> str:
    """One row per group, in the order given."""
    lines = [
        "| experiment | n | test accuracy | val accuracy | trainable params | train s "
        "| artifact bytes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        cells = [g["experiment"], g["n"], _score(g["test_accuracy"]), _score(g["val_accuracy"])]
        cells += [f"{g['trainable_params']:,}", f"{g['train_seconds']:.1f}", g["adapter_bytes"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def label_sides(sizes: list[int]) -> list[str]:
    """Where each point's label starts (matplotlib's ``ha``): right of the point in the left
    half of the log size axis, ending left of it in the right half, so that no label runs
    off the plot's right edge."""
    low, high = np.log10(min(sizes)), np.log10(max(sizes))
    middle = (low + high) / 2
    return ["right" if high > low and np.log10(s) > middle else "left" for s in sizes]


def plot_groups(groups: list[dict], path: str | Path) -> None:
    """Test accuracy (mean, std bars) against trainable parameters (log), labelled points."""
    plt, fig, ax = figure()
    fig.set_size_inches(8, 5)
    sides = label_sides([g["trainable_params"] for g in groups])
    for i, (g, side) in enumerate(zip(groups, sides)):  # by size: labels above, then below
        mean, std = g["test_accuracy"]
        x = g["trainable_params"]
        ax.errorbar(x, mean, yerr=std or 0, fmt="o", color="C0", capsize=4)
        dx = 6 if side == "left" else -6
        offset = (dx, 10 + 12 * (i % 3)) if i % 2 == 0 else (dx, -16 - 12 * (i % 3))
        label = g["experiment"] + (f" (n={g['n']})" if g["n"] > 1 else "")
        ax.annotate(
            label, (x, mean), textcoords="offset points", xytext=offset, fontsize=8, ha=side
        )
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.2)
    title = "SST-2: test accuracy vs trainable parameters (bars: std over seeds)"
    ax.set(xlabel="trainable parameters", ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    save_figure(plt, fig, path)


def run_report(args: argparse.Namespace) -> int:
    if args.input:
        show, source = read_json(args.input), args.input
    else:
        show = dvc_json("exp", "show", "--json", *(["--all-commits"] if args.all_commits else []))
        source = "the output of `dvc exp show --json`"
    try:
        rows = experiment_rows(show)
        groups = group_rows(rows)
        table = markdown_table(groups)
    except (KeyError, TypeError, AttributeError, ValueError):
        raise LoraSst2Error(f"{source} is not what `dvc exp show --json` prints") from None
    if not rows:
        raise LoraSst2Error("no experiment with metrics: run `dvc repro` or `dvc exp run` first")
    plot_groups(groups, args.png)
    if args.md:
        atomic_write_text(args.md, table)
    print(table, end="")
    return 0


def register(subparsers) -> None:
    """Add `report` to the CLI."""
    p = subparsers.add_parser(
        "report", help="table and plot of all experiments, seeds grouped (mean ± std)"
    )
    p.add_argument("--input", help="a saved `dvc exp show --json` (default: run it)")
    p.add_argument("--png", default="metrics/experiments.png", help="plot to write")
    p.add_argument("--md", help="also write the Markdown table to this file")
    p.add_argument(
        "--all-commits",
        action="store_true",
        help="include experiments based on older commits (default: HEAD's only)",
    )
    p.set_defaults(run=run_report)
