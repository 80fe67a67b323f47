"""`lora-sst2 gate`: CI check that the committed metrics did not regress against a git revision.

It compares `dvc metrics diff REV --all --json` (REV against the workspace) with
params.yaml's gate.max_drop and prints a Markdown report.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.commands.dvcrun import dvc_json, run
from lora_core.commands.fresh import read_lock
from lora_core.config import load_params
from lora_core.errors import LoraSst2Error

# Metrics are stored rounded; float subtraction leaves ~1e-17, so a drop of exactly max_drop passes.
TOLERANCE = 1e-9


# --- pure -------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Row:
    """One entry of a `dvc metrics diff` or `dvc params diff`: REV's value and the workspace's."""

    name: str  # as shown: the key, prefixed with its file when two files share the key
    key: str  # as in the file and in gate.max_drop, e.g. "test.accuracy"
    old: Any
    new: Any

    @property
    def diff(self) -> float | None:
        """new - old when both are numbers."""
        both = _is_number(self.old) and _is_number(self.new)
        return self.new - self.old if both else None


def diff_rows(diff: dict[str, dict[str, dict]]) -> list[Row]:
    """Flatten dvc's `{file: {key: {"old", "new"}}}` JSON into rows sorted by file and key."""
    keys = [key for entries in diff.values() for key in entries]
    return [
        Row(key if keys.count(key) == 1 else f"{path}:{key}", key, v.get("old"), v.get("new"))
        for path in sorted(diff)
        for key, v in sorted(diff[path].items())
    ]


def lower_is_better(key: str) -> bool:
    """Losses should go down; every other metric should go up."""
    return key.endswith("loss")


def regression(row: Row, max_drop: float) -> str | None:
    """Why a metric fails its threshold, or None when it held (or REV did not have it)."""
    if row.old is None:
        return None
    if row.new is None:
        return "missing in the workspace"
    if row.diff is None:
        return f"not a number ({row.old!r} -> {row.new!r})"
    drop = row.diff if lower_is_better(row.key) else -row.diff
    if drop - max_drop <= TOLERANCE:
        return None
    moved = "rose" if lower_is_better(row.key) else "dropped"
    return f"{moved} by {_fmt(drop)}, more than {_fmt(max_drop)}"


def failures(rows: list[Row], max_drop: dict[str, float]) -> dict[str, str]:
    """Failing metric -> why, over every metric that gate.max_drop names."""
    failed = {}
    for key, limit in max_drop.items():
        matching = [row for row in rows if row.key == key]
        if not matching:
            failed[key] = "not in any metrics file"
        for row in matching:
            reason = regression(row, limit)
            if reason:
                failed[row.name] = reason
    return failed


def nothing_to_compare(rev: str, rows: list[Row], rev_is_head: bool) -> str | None:
    """The reason there is nothing to gate, or None."""
    if all(row.old is None for row in rows):
        return f"nothing to compare: {rev} has no metrics"
    if rev_is_head and all(row.old == row.new for row in rows):
        return (
            f"nothing to compare: {rev} is the checked-out commit "
            "and the workspace metrics are unchanged"
        )
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")  # a bare | would split the Markdown cell


def _gate_cell(row: Row, max_drop: dict[str, float], failed: dict[str, str]) -> str:
    if row.name in failed:
        return f"FAIL: {failed[row.name]}"
    return f"ok (max drop {_fmt(max_drop[row.key])})" if row.key in max_drop else ""


def _metric_line(row: Row, max_drop: dict[str, float], failed: dict[str, str]) -> str:
    diff = "-" if row.diff is None else f"{row.diff:+.6g}"
    gate = _gate_cell(row, max_drop, failed)
    return f"| {row.name} | {_fmt(row.old)} | {_fmt(row.new)} | {diff} | {gate} |"


def _verdict(failed: dict[str, str], max_drop: dict[str, float]) -> str:
    if failed:
        return "**FAIL**: " + "; ".join(f"{name} {why}" for name, why in failed.items())
    limits = ", ".join(f"{key} {_fmt(limit)}" for key, limit in max_drop.items())
    return f"**PASS**: no gated metric moved the wrong way by more than its max drop ({limits})"


def format_report(
    rev: str, metrics: list[Row], params: list[Row], max_drop: dict[str, float]
) -> tuple[str, bool]:
    """The Markdown report (gated metrics first) and whether the gate failed."""
    failed = failures(metrics, max_drop)
    lines = [f"## Metrics gate: `{rev}` -> workspace", ""]
    lines += ["| metric | old | new | diff | gate |", "|---|---:|---:|---:|---|"]
    gated_first = sorted(metrics, key=lambda row: row.key not in max_drop)
    lines += [_metric_line(row, max_drop, failed) for row in gated_first]
    lines += ["", "### Params changed", ""]
    lines += ["| param | old | new |", "|---|---|---|"] if params else ["No params changed."]
    lines += [f"| {r.name} | {_fmt(r.old)} | {_fmt(r.new)} |" for r in params]
    return "\n".join([*lines, "", _verdict(failed, max_drop)]) + "\n", bool(failed)


# --- command ----------------------------------------------------------------------------------


def _commit(rev: str) -> str:
    """The commit hash ``rev`` names; an unknown revision is a LoraSst2Error."""
    proc = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], "git rev-parse")
    if proc.returncode != 0:
        raise LoraSst2Error(
            f"unknown git revision {rev!r} (in CI, check out with fetch-depth: 0 so it exists)"
        )
    return proc.stdout.strip()


def run_gate(args: argparse.Namespace) -> int:
    """Print the metrics report against --base; exit 1 when a gated metric regressed."""
    max_drop = load_params(args.params).gate.max_drop
    read_lock()  # a damaged dvc.lock would make dvc compare nothing, and the gate pass
    rev_is_head = _commit(args.base) == _commit("HEAD")
    metrics = diff_rows(dvc_json("metrics", "diff", args.base, "--all", "--json"))
    note = nothing_to_compare(args.base, metrics, rev_is_head)
    if note:
        report, failed = note + "\n", False
    else:
        params = diff_rows(dvc_json("params", "diff", args.base, "--json"))
        report, failed = format_report(args.base, metrics, params, max_drop)
    print(report, end="")
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `gate` to the lora-sst2 command."""
    gate = subparsers.add_parser(
        "gate", help="report metrics against a git revision; fail past params' gate.max_drop"
    )
    gate.add_argument("--base", required=True, metavar="REV", help="git revision to compare to")
    gate.add_argument("--params", default="params.yaml", help="file with gate.max_drop")
    gate.add_argument("--output", metavar="FILE", help="also write the Markdown report here")
    gate.set_defaults(run=run_gate)
