"""`lora-sst2 check-fresh` and `lora-sst2 gate`: CI checks that committed metrics are current
and did not regress.

check-fresh reads `dvc status --json` and drops the entries that only say data is absent (a
dep "deleted", an output "deleted" or "not in cache"): in a fresh clone with no cache and no
remote, data/ and models/ are absent by design. What is left (params, code, command,
git-tracked outputs such as metrics/eval.json) is staleness. It does not use
`dvc repro --dry --allow-missing`, although that is DVC's own "changed apart from missing
data" test: in DVC 3.67 a dry run of a stage that did change while its deps are absent (a
fresh clone after `lora.r` was edited) still hashes those absent deps, with or without
--no-run-cache, and crashes ("failed to reproduce 'train': [Errno 2] No such file or
directory: 'data/tokenized'", exit 255) instead of naming the stage; nor does it say why a
stage would run. The one check --allow-missing adds, that a missing dep's hash in
dvc.lock equals the hash its upstream stage locked for it, is done here from dvc.lock.

gate compares `dvc metrics diff REV --all --json` (REV against the workspace) with
params.yaml's gate.max_drop and prints a Markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lora_core.config import load_params
from lora_core.errors import LoraSst2Error

# What `dvc status` says of a dep or output that is merely absent; --allow-missing skips these.
MISSING = ("deleted", "not in cache")
# "always changed" is not here: such a stage re-runs by design, its lock is not out of date.
STAGE_CHANGES = ("changed command", "changed checksum")
FRESH = "fresh: dvc.lock matches params and code"
REPRO_HINT = "run `dvc repro`, then commit dvc.lock and metrics/"
# Metrics are stored rounded; float subtraction leaves ~1e-17, so a drop of exactly max_drop passes.
TOLERANCE = 1e-9


# --- check-fresh: pure ------------------------------------------------------------------------


def _lookup(params: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(params, dict) or part not in params:
            return None
        params = params[part]
    return params


def _leaf_diff(key: str, old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = dict.fromkeys([*old, *new])
        return [n for k in keys for n in _leaf_diff(f"{key}.{k}", old.get(k), new.get(k))]
    return [] if old == new else [key]


def param_changes(changed: dict[str, str], locked: dict, current: dict) -> list[str]:
    """Dotted names behind `dvc status`'s changed params keys, down to the leaves (lora.r)."""
    names: list[str] = []
    for key in changed:
        names += _leaf_diff(key, locked.get(key), _lookup(current, key)) or [key]
    return names


def _digest(entry: dict) -> Any:
    return entry.get(entry.get("hash", "md5"))


def upstream_mismatches(lock: dict) -> dict[str, list[str]]:
    """Per stage, deps whose hash in dvc.lock differs from the one their producing stage locked."""
    stages = lock.get("stages") or {}
    produced = {o["path"]: _digest(o) for s in stages.values() for o in s.get("outs", [])}
    found = {}
    for name, stage in stages.items():
        paths = [
            d["path"]
            for d in stage.get("deps", [])
            if d["path"] in produced and _digest(d) != produced[d["path"]]
        ]
        if paths:
            found[name] = paths
    return found


def stage_reasons(entries: list, locked: dict, current: dict, upstream: list[str]) -> list[str]:
    """Why one stage is stale, from its `dvc status --json` entries; absent data is no reason."""
    command, params, deps, outs = False, [], list(upstream), []
    for entry in entries:
        command = command or entry in STAGE_CHANGES
        if not isinstance(entry, dict):
            continue
        for path, state in entry.get("changed deps", {}).items():
            if isinstance(state, dict):  # a params file: {key: modified | new | deleted}
                params += param_changes(state, locked.get(path, {}), current.get(path) or {})
            elif state not in MISSING and path not in deps:
                deps.append(path)
        outs += [p for p, s in entry.get("changed outs", {}).items() if s not in MISSING]
    groups = [("params changed", params), ("deps changed", deps), ("outs changed", outs)]
    reasons = ["command changed"] if command else []
    return reasons + [f"{label}: {', '.join(items)}" for label, items in groups if items]


def stale_stages(status: dict, lock: dict, current: dict) -> dict[str, list[str]]:
    """Stage -> reasons its dvc.lock entry no longer matches; `current` maps params files."""
    locked = lock.get("stages") or {}
    upstream = upstream_mismatches(lock)
    stale = {}
    for name in dict.fromkeys([*status, *upstream]):
        params = locked.get(name, {}).get("params", {})
        reasons = stage_reasons(status.get(name, []), params, current, upstream.get(name, []))
        if reasons:
            stale[name] = reasons
    return stale


def format_stale(stale: dict[str, list[str]]) -> str:
    """One line: each stale stage and why, or the all-clear."""
    if not stale:
        return FRESH
    parts = [f"{name} ({'; '.join(reasons)})" for name, reasons in stale.items()]
    return f"stale: {', '.join(parts)} -- {REPRO_HINT}"


# --- gate: pure -------------------------------------------------------------------------------


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


# --- subprocesses -----------------------------------------------------------------------------


def _run(cmd: list[str], shown: str) -> subprocess.CompletedProcess:
    env = {"DVC_NO_ANALYTICS": "1", **os.environ}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise LoraSst2Error(f"`{shown}` failed: {cmd[0]} not found") from None


def dvc_json(*args: str) -> Any:
    """Run `dvc ARGS` and parse its JSON output; a failure is one LoraSst2Error line."""
    shown = " ".join(["dvc", *args])
    proc = _run([sys.executable, "-m", "dvc", *args], shown)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 0:
        why = lines[-1].removeprefix("ERROR: ") if lines else f"exit {proc.returncode}"
        raise LoraSst2Error(f"`{shown}` failed: {why}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise LoraSst2Error(f"`{shown}` did not print JSON: {proc.stdout[:200]!r}") from None


def _commit(rev: str) -> str:
    proc = _run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], "git rev-parse")
    if proc.returncode != 0:
        raise LoraSst2Error(
            f"unknown git revision {rev!r} (in CI, check out with fetch-depth: 0 so it exists)"
        )
    return proc.stdout.strip()


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except yaml.YAMLError as err:
        raise LoraSst2Error(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None


def _params_files(status: dict) -> set[str]:
    changed = [
        e.get("changed deps", {}) for es in status.values() for e in es if isinstance(e, dict)
    ]
    return {path for deps in changed for path, state in deps.items() if isinstance(state, dict)}


# --- commands ---------------------------------------------------------------------------------


def run_check_fresh(args: argparse.Namespace) -> int:
    """Exit 1 naming each stage whose dvc.lock entry no longer matches params and code."""
    status = dvc_json("status", "--json")
    current = {path: _read_yaml(Path(path)) for path in _params_files(status)}
    stale = stale_stages(status, _read_yaml(Path("dvc.lock")) or {}, current)
    print(format_stale(stale))
    return 1 if stale else 0


def run_gate(args: argparse.Namespace) -> int:
    """Print the metrics report against --base; exit 1 when a gated metric regressed."""
    max_drop = load_params(args.params).gate.max_drop
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
    """Add `check-fresh` and `gate` to the lora-sst2 command."""
    fresh = subparsers.add_parser(
        "check-fresh",
        help="fail when dvc.lock no longer matches params and code (metrics are stale); "
        "run it at the project root",
    )
    fresh.set_defaults(run=run_check_fresh)
    gate = subparsers.add_parser(
        "gate", help="report metrics against a git revision; fail past params' gate.max_drop"
    )
    gate.add_argument("--base", required=True, metavar="REV", help="git revision to compare to")
    gate.add_argument("--params", default="params.yaml", help="file with gate.max_drop")
    gate.add_argument("--output", metavar="FILE", help="also write the Markdown report here")
    gate.set_defaults(run=run_gate)
