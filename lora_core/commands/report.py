"""`lora-sst2 report`: experiments from `dvc exp show --json` as a table and a plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lora_core.commands.dvcrun import dvc_json
from lora_core.errors import LoraSst2Error
from lora_core.files import atomic_write_text
from lora_core.metrics import figure, save_figure

COLUMNS = (
    ("experiment", "name"),
    ("mode", "mode"),
    ("r", "r"),
    ("trainable params", "trainable_params"),
    ("test accuracy", "test_accuracy"),
    ("val accuracy", "val_accuracy"),
    ("train s", "train_seconds"),
    ("peak MB", "peak_memory_mb"),
    ("artifact bytes", "adapter_bytes"),
)


def _row(name: str, data: dict | None) -> dict | None:
    """One experiment's params and metrics, or None when it has no metrics."""
    metrics = (data or {}).get("metrics") or {}
    train = (metrics.get("metrics/train.json") or {}).get("data")
    scores = (metrics.get("metrics/eval.json") or {}).get("data")
    if not train or not scores:
        return None
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    mode = train.get("mode", "lora")
    return {
        "name": name,
        "mode": mode,
        "r": params.get("lora", {}).get("r") if mode == "lora" else None,
        "trainable_params": train["trainable_params"],
        "test_accuracy": scores["test"]["accuracy"],
        "val_accuracy": scores["val"]["accuracy"],
        "train_seconds": train.get("train_seconds"),
        "peak_memory_mb": train.get("peak_memory_mb"),
        "adapter_bytes": train.get("adapter_bytes"),
    }


def experiment_rows(show: list[dict]) -> list[dict]:
    """Every experiment with metrics, and its baseline commit; the workspace is skipped.

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
    return sorted(rows, key=lambda r: (r["trainable_params"], r["name"]))


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else str(value)


def markdown_table(rows: list[dict]) -> str:
    """One row per experiment, in the order given."""
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[key]) for _, key in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_rows(rows: list[dict], path: str | Path) -> None:
    """Test accuracy against trainable parameters (log scale), one labelled point each."""
    plt, fig, ax = figure()
    fig.set_size_inches(7, 5)
    for row in rows:
        detail = f"r={row['r']}" if row["mode"] == "lora" else row["mode"]
        ax.scatter(row["trainable_params"], row["test_accuracy"], color="C0")
        ax.annotate(
            f"{row['name']} ({detail})",
            (row["trainable_params"], row["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters", ylabel="test accuracy", title="SST-2: accuracy vs size")
    ax.grid(alpha=0.3)
    save_figure(plt, fig, path)


def run_report(args: argparse.Namespace) -> int:
    if args.input:
        show = json.loads(Path(args.input).read_text())
    else:
        show = dvc_json("exp", "show", "--json", *(["--all-commits"] if args.all_commits else []))
    rows = experiment_rows(show)
    if not rows:
        raise LoraSst2Error("no experiment with metrics: run `dvc repro` or `dvc exp run` first")
    table = markdown_table(rows)
    plot_rows(rows, args.png)
    if args.md:
        atomic_write_text(args.md, table)
    print(table, end="")
    return 0


def register(subparsers) -> None:
    """Add `report` to the CLI."""
    p = subparsers.add_parser("report", help="table and plot of all experiments")
    p.add_argument("--input", help="a saved `dvc exp show --json` (default: run it)")
    p.add_argument("--png", default="metrics/experiments.png", help="plot to write")
    p.add_argument("--md", help="also write the Markdown table to this file")
    p.add_argument(
        "--all-commits",
        action="store_true",
        help="include experiments based on older commits (default: HEAD's only)",
    )
    p.set_defaults(run=run_report)
