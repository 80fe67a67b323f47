"""`lora-sst2 check-fresh`: CI check that dvc.lock, and so the committed metrics, are current.

It reads `dvc status --json` and drops the entries that only say data is absent (a dep
"deleted", an output "deleted" or "not in cache"): in a fresh clone with no cache and no
remote, data/ and models/ are absent by design. What is left (params, code, command,
git-tracked outputs such as metrics/eval.json) is staleness. It does not use
`dvc repro --dry --allow-missing`, although that is DVC's own "changed apart from missing
data" test: in DVC 3.67 a dry run of a stage that did change while its deps are absent (a
fresh clone after `lora.r` was edited) still hashes those absent deps, with or without
--no-run-cache, and crashes ("failed to reproduce 'train': [Errno 2] No such file or
directory: 'data/tokenized'", exit 255) instead of naming the stage; nor does it say why a
stage would run. The one check --allow-missing adds, that a missing dep's hash in
dvc.lock equals the hash its upstream stage locked for it, is done here from dvc.lock.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lora_core.commands.dvcrun import dvc_json
from lora_core.config import load_params
from lora_core.errors import LoraSst2Error, shown
from lora_core.readers import load_yaml, yaml_problem

# What `dvc status` says of a dep or output that is merely absent; --allow-missing skips these.
MISSING = ("deleted", "not in cache")
# "always changed" is not here: such a stage re-runs by design, its lock is not out of date.
STAGE_CHANGES = ("changed command", "changed checksum")
FRESH = "fresh: dvc.lock matches params and code"
REPRO_HINT = "run `dvc repro`, then commit dvc.lock and metrics/"


# --- pure -------------------------------------------------------------------------------------


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


# --- dvc status, dvc.lock and params files ----------------------------------------------------


def _read_yaml(path: Path) -> Any:
    """The parsed file (1e-4 a float, as DVC reads it), or None when it does not exist."""
    return load_yaml(path) if path.exists() else None


def _dvc_schema_problem(lock: dict) -> str | None:
    """What DVC's own lock schema says is wrong, or None (also when DVC moved it)."""
    try:
        from dvc.schema import COMPILED_LOCKFILE_SCHEMA
        from voluptuous import Invalid
    except ImportError:  # DVC internals: the checks in lock_problem still run
        return None
    try:
        COMPILED_LOCKFILE_SCHEMA(lock)
    except Invalid as err:
        return str(err)
    return None


def _hashed(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get(entry.get("hash", "md5")), str)


def lock_problem(lock: Any, declared: dict | None = None) -> str | None:
    """What makes a parsed dvc.lock unusable (cut short, hand-edited), or None: DVC's own
    lock schema, a hash on every dep and out (DVC accepts an entry cut before it), and the
    outs of every stage whose ``declared`` (dvc.yaml) entry has some (a cut after deps)."""
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        return "no stages mapping"
    problem = _dvc_schema_problem(lock)
    if problem:
        return problem
    for name, stage in lock["stages"].items():
        wants = (declared or {}).get(name) or {}
        if any(wants.get(k) for k in ("outs", "metrics", "plots")) and not stage.get("outs"):
            return f"stage {shown(name)} has no outs"
        for kind in ("deps", "outs"):
            entries = stage.get(kind, []) if isinstance(stage, dict) else None
            if not isinstance(entries, list) or not all(_hashed(e) for e in entries):
                return f"stage {shown(name)}: an entry of {kind} has no path and hash"
    return None


def read_lock(path: Path = Path("dvc.lock")) -> dict:
    """dvc.lock, checked; a damaged one is one error that says how to get it back."""
    fix = f"restore it with `git checkout -- {path}`, or run `dvc repro` to write it anew"
    if not path.exists():
        return {}  # nothing reproduced yet: every stage is stale, which status will say
    from dvc.utils.serialize import YAMLError, parse_yaml

    try:  # DVC's own YAML reader: `md5: 0179` is the number it reads there, not a string
        lock = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (YAMLError, UnicodeDecodeError) as err:
        what = yaml_problem(err.__cause__) if err.__cause__ else "not valid YAML"
        raise LoraSst2Error(f"{path} is damaged ({what}); {fix}") from None
    problem = lock_problem(lock, (_read_yaml(Path("dvc.yaml")) or {}).get("stages"))
    if problem:
        raise LoraSst2Error(f"{path} is damaged ({problem}); {fix}")
    return lock


def check_project_files(params: Path = Path("params.yaml")) -> dict:
    """params.yaml must be valid and dvc.lock whole before dvc is asked anything."""
    load_params(params)
    return read_lock()


def _params_files(status: dict) -> set[str]:
    """The params files (params.yaml) that `dvc status` reports changed keys in."""
    changed = [
        e.get("changed deps", {}) for es in status.values() for e in es if isinstance(e, dict)
    ]
    return {path for deps in changed for path, state in deps.items() if isinstance(state, dict)}


# --- command ----------------------------------------------------------------------------------


def run_check_fresh(args: argparse.Namespace) -> int:
    """Exit 1 naming each stage whose dvc.lock entry no longer matches params and code."""
    lock = check_project_files()
    status = dvc_json("status", "--json")
    current = {path: _read_yaml(Path(path)) for path in _params_files(status)}
    stale = stale_stages(status, lock, current)
    print(format_stale(stale))
    return 1 if stale else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check-fresh` to the lora-sst2 command."""
    parser = subparsers.add_parser(
        "check-fresh",
        help="fail when dvc.lock no longer matches params and code (metrics are stale); "
        "run it at the project root",
    )
    parser.set_defaults(run=run_check_fresh)
