"""The gate's rules and report: metric rows, regressions, significance, Markdown.

Pure functions of `dvc metrics diff`'s rows, params.yaml's gate section and the paired
predictions; `lora-sst2 gate` (gate.py) gathers those and prints what this decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lora_core.commands.paired import Paired
from lora_core.config import GateConfig
from lora_core.errors import is_number

# Metrics are stored rounded; float subtraction leaves ~1e-17, so a drop of exactly max_drop passes.
TOLERANCE = 1e-9
# A metric only a binary run has -> the one a run with more than two classes has in its place.
STAND_INS = {"f1": "macro_f1"}


# --- pure -------------------------------------------------------------------------------------


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
        both = is_number(self.old) and is_number(self.new)
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


def applied_max_drop(
    rows: list[Row], max_drop: dict[str, float]
) -> tuple[dict[str, float], list[str]]:
    """gate.max_drop as the gate applies it, and a note per change: a binary-only key that
    no metrics file has (test.f1 of a run with more than two classes) gates its stand-in
    (test.macro_f1) with the same max drop, unless max_drop names that too; a key that
    names nothing, stand-in or not, still fails."""
    keys, applied, notes = {row.key for row in rows}, {}, []
    for key, limit in max_drop.items():
        name = key.rpartition(".")[2]
        stand_in = key.removesuffix(name) + STAND_INS[name] if name in STAND_INS else None
        if key in keys or stand_in not in keys:
            applied[key] = limit
            continue
        missing = f"{key} is in no metrics file (a run with more than two classes has no {name})"
        if stand_in in max_drop:
            notes.append(f"{missing}: not gated, {stand_in} is gated by its own max drop")
        else:
            applied[stand_in] = limit
            notes.append(f"{missing}: {stand_in} is gated in its place, max drop {_fmt(limit)}")
    return applied, notes


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


def significance(
    rows: list[Row], failed: dict[str, str], paired: Paired | None, gate: GateConfig
) -> tuple[dict[str, str], dict[str, str]]:
    """(failures, warnings): a drop of test accuracy (McNemar) or test F1 (macro-F1 past two
    classes; paired bootstrap) that its paired test does not find significant at
    ``gate.alpha`` only warns, unless ``gate.require_significance`` is false."""
    if paired is None or not gate.require_significance:
        return failed, {}
    warned = {}
    for row in rows:
        p = paired.p_for(row.key)
        if row.name in failed and row.diff is not None and p is not None and p >= gate.alpha:
            test = "McNemar" if row.key == "test.accuracy" else "paired bootstrap"
            why = f"but not significant ({test} p = {p:.3g} >= alpha {gate.alpha:g})"
            warned[row.name] = f"{failed[row.name]}, {why}"
    return {k: v for k, v in failed.items() if k not in warned}, warned


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


def _gate_cell(row: Row, max_drop: dict[str, float], failed: dict, warned: dict) -> str:
    if row.name in failed:
        return f"FAIL: {failed[row.name]}"
    if row.name in warned:
        return f"warn: {warned[row.name]}"
    return f"ok (max drop {_fmt(max_drop[row.key])})" if row.key in max_drop else ""


def _metric_line(row: Row, max_drop: dict[str, float], failed: dict, warned: dict) -> str:
    diff = "-" if row.diff is None else f"{row.diff:+.6g}"
    gate = _gate_cell(row, max_drop, failed, warned)
    return f"| {row.name} | {_fmt(row.old)} | {_fmt(row.new)} | {diff} | {gate} |"


def _paired_lines(rev: str, paired: Paired | str) -> list[str]:
    lines = ["", "### Paired test: the test split, example by example", ""]
    if isinstance(paired, str):
        return [*lines, f"No paired test: {paired}; the gate falls back to max_drop alone."]
    header = f"| examples | fixed (wrong at `{rev}`, right now) | broken (right, now wrong) | "
    p, f1 = paired, "F1" if paired.classes == 2 else "macro-F1"
    return [
        *lines,
        header + f"accuracy: McNemar exact p | {f1}: paired bootstrap p |",
        "|---:|---:|---:|---:|---:|",
        f"| {p.examples} | {p.fixed} | {p.broken} | {p.p_value:.4g} | {p.f1_p_value:.4g} |",
    ]


def _verdict(failed: dict[str, str], warned: dict[str, str], max_drop: dict[str, float]) -> str:
    if failed:
        return "**FAIL**: " + "; ".join(f"{name} {why}" for name, why in failed.items())
    limits = ", ".join(f"{key} {_fmt(limit)}" for key, limit in max_drop.items())
    verdict = f"**PASS**: no gated metric moved the wrong way by more than its max drop ({limits})"
    if warned:
        verdict = "**PASS** with warnings: " + "; ".join(f"{k} {v}" for k, v in warned.items())
    return verdict


def format_report(
    rev: str,
    metrics: list[Row],
    params: list[Row],
    gate: GateConfig,
    paired: Paired | str = "no predictions to pair",
) -> tuple[str, bool]:
    """The Markdown report (gated metrics first, then the paired test) and whether it failed."""
    max_drop, notes = applied_max_drop(metrics, gate.max_drop)
    failed, warned = failures(metrics, max_drop), {}
    if isinstance(paired, Paired):
        failed, warned = significance(metrics, failed, paired, gate)
    lines = [f"## Metrics gate: `{rev}` -> workspace", ""]
    lines += ["| metric | old | new | diff | gate |", "|---|---:|---:|---:|---|"]
    gated_first = sorted(metrics, key=lambda row: row.key not in max_drop)
    lines += [_metric_line(row, max_drop, failed, warned) for row in gated_first]
    lines += ["", *(f"Note: {note}." for note in notes)] if notes else []
    lines += _paired_lines(rev, paired)
    lines += ["", "### Params changed", ""]
    lines += ["| param | old | new |", "|---|---|---|"] if params else ["No params changed."]
    lines += [f"| {r.name} | {_fmt(r.old)} | {_fmt(r.new)} |" for r in params]
    return "\n".join([*lines, "", _verdict(failed, warned, max_drop)]) + "\n", bool(failed)
