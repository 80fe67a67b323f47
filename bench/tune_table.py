"""A finished tune study beside what it never read: val and test of every complete trial,
and the minutes of complete and pruned trials (what pruning cost and saved).

    python bench/tune_table.py WORKSPACE [--study default]

The trials' params and minutes come from the study (tune/<study>/study.db), their val and
test scores from each experiment's metrics/eval.json in `dvc exp show --json`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import optuna

from lora_core.commands.dvcrun import dvc_json
from lora_core.config import load_params
from lora_core.tune import shown
from lora_core.tune_space import current, parse_space


def scores() -> dict[str, dict]:
    """metrics/eval.json of each experiment in this workspace's `dvc exp show`, by name."""
    found = {}
    for commit in dvc_json("exp", "show", "--json"):
        for exp in commit.get("experiments") or []:
            metrics = exp["revs"][0]["data"]["metrics"]
            found[exp["name"]] = metrics.get("metrics/eval.json", {}).get("data", {})
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--study", default="default")
    args = parser.parse_args(argv)
    os.chdir(args.root)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=args.study, storage=f"sqlite:///tune/{args.study}/study.db"
    )
    found = scores()
    trials = {s: [t for t in study.trials if t.state.name == s] for s in ("COMPLETE", "PRUNED")}
    baseline = load_params(f"tune/{args.study}/params.yaml")  # as tune saw it
    defaults = {d.key: current(baseline, d.key) for d in parse_space(baseline, True)}
    print(
        "| trial | params | val accuracy | val macro-F1 | test accuracy | test macro-F1 | minutes |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in trials["COMPLETE"]:
        ev = found.get(t.user_attrs["name"], {})
        cells = [
            ev.get(split, {}).get(k) for split in ("val", "test") for k in ("accuracy", "macro_f1")
        ]
        cells = " | ".join("–" if c is None else f"{c:.4f}" for c in cells)
        params = shown(t.user_attrs["overrides"], defaults)
        print(f"| {t.number} | {params} | {cells} | {t.user_attrs['minutes']:.2f} |")
    for state, group in trials.items():
        minutes = sum(t.user_attrs["minutes"] for t in group)
        mean = minutes / len(group) if group else 0.0
        print(f"{state.lower()}: {len(group)} trials, {minutes:.1f} min (mean {mean:.2f})")


if __name__ == "__main__":
    sys.exit(main())
