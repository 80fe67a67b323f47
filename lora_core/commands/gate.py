"""`lora-sst2 gate`: CI check that the committed metrics did not regress against a git revision.

It compares `dvc metrics diff REV --all --json` (REV against the workspace) with
params.yaml's gate.max_drop, pairs REV's and the workspace's test predictions example by
example (McNemar's exact test), and prints a Markdown report. A test metric that dropped
past max_drop fails only when the paired test finds the change significant at gate.alpha
(unless gate.require_significance is false); without predictions at REV, max_drop alone.
Any number of classes: past two, F1's paired test is macro-F1's, and a binary-only key of
max_drop (test.f1) gates its stand-in (test.macro_f1), which the report notes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lora_core.baseline import BASELINE
from lora_core.commands.dvcrun import dvc_json, run
from lora_core.commands.fresh import read_lock
from lora_core.commands.paired import Paired, pair
from lora_core.commands.verdict import diff_rows, format_report, nothing_to_compare
from lora_core.config import load_params
from lora_core.errors import LoraSst2Error, shown
from lora_core.live import live_folder
from lora_core.readers import read_json
from lora_core.scores import PREDICTIONS, read_predictions


def _commit(rev: str) -> str:
    """The commit hash ``rev`` names; an unknown revision is a LoraSst2Error."""
    proc = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], "git rev-parse")
    if proc.returncode != 0:
        raise LoraSst2Error(
            f"unknown git revision {shown(rev)} (in CI, check out with fetch-depth: 0 so it exists)"
        )
    return proc.stdout.strip()


def task_classes(path: str = "metrics/eval.json") -> int | None:
    """The workspace task's class count: the classes evaluate scored in ``test.per_class``;
    None when the file or the key is missing (an older eval.json)."""
    try:
        per_class = read_json(path)["test"]["per_class"]
    except (LoraSst2Error, OSError, KeyError, TypeError):
        return None
    return len(per_class) if isinstance(per_class, dict) and len(per_class) >= 2 else None


def paired_predictions(rev: str, resamples: int) -> Paired | str:
    """REV's test predictions (from git) paired with the workspace's, or why they cannot be."""
    path = f"metrics/{PREDICTIONS}"
    shown = run(["git", "show", f"{rev}:{path}"], "git show")
    if shown.returncode != 0:
        return f"`{rev}` has no {path}"
    if not Path(path).is_file():
        return f"the workspace has no {path}"
    try:
        base = read_predictions(shown.stdout)
        head = read_predictions(Path(path).read_text(encoding="utf-8"))
        return pair(base, head, resamples, task_classes())
    except (ValueError, UnicodeDecodeError) as err:
        return f"cannot pair {path} of `{rev}` and the workspace ({err})"


# Not this model's results: DVCLive's view of a run in progress (git-ignored), and the TF-IDF
# baseline (its test.accuracy would be gated, and paired, as the model's; `lora-sst2 compare`).
NOT_GATED = (f"{live_folder('metrics').as_posix()}/", f"metrics/{BASELINE}")


def run_gate(args: argparse.Namespace) -> int:
    """Print the metrics report against --base; exit 1 when a gated metric regressed."""
    project = load_params(args.params)
    gate = project.gate
    read_lock()  # a damaged dvc.lock would make dvc compare nothing, and the gate pass
    rev_is_head = _commit(args.base) == _commit("HEAD")
    diff = dvc_json("metrics", "diff", args.base, "--all", "--json")
    metrics = diff_rows({path: v for path, v in diff.items() if not path.startswith(NOT_GATED)})
    note = nothing_to_compare(args.base, metrics, rev_is_head)
    if note:
        report, failed = note + "\n", False
    else:
        params = diff_rows(dvc_json("params", "diff", args.base, "--json"))
        paired = paired_predictions(args.base, project.evaluate.bootstrap_resamples)
        report, failed = format_report(args.base, metrics, params, gate, paired)
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
