"""`lora-sst2 tune`: an Optuna study whose every trial is a `dvc exp run` (docs/tune.md)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from lora_core.config import load_params
from lora_core.errors import LoraSst2Error, errors_from, shown
from lora_core.files import find_project_root
from lora_core.tune import (
    Search,
    choose,
    defaults_trial,
    fail_leftovers,
    shared_note,
    table,
    winner,
)
from lora_core.tune_space import current, parse_space

STUDIES = "tune"  # under the project root, git-ignored: tune/<study>/{study.db, params.yaml, logs}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help="search params with real `dvc exp run` trials (Optuna; docs/tune.md)",
        description="Run trials (each a `dvc exp run -S ...`) until N are complete, print the "
        "table and the winner; trial 0 is params.yaml as it stands. Resumes the study.",
    )
    p.add_argument("--trials", type=int, default=None, help="complete trials in all (tune.trials)")
    p.add_argument("--study", default="default", help="the study's name (default: default)")
    p.add_argument("--storage", default=None, help="an Optuna RDB URL shared by several machines")
    p.add_argument("--apply", action="store_true", help="make the chosen trial the workspace")
    lead = "--apply the winner even when its lead over trial 0 is not significant"
    p.add_argument("--force", action="store_true", help=lead)
    p.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    p.set_defaults(run=run)


def baseline_folder(root: Path, study: str) -> Path:
    """tune/<study>/ with the baseline params.yaml (and dvc.lock) as they stood at the first
    call: every trial is that plus its overrides, even after a kill left the workspace changed.
    A params.yaml or tune space that does not validate is never saved as a baseline."""
    if not study or any(c in study for c in "/\\") or study.startswith("."):
        raise LoraSst2Error(f"--study {shown(study)} is not allowed: use a plain name")
    folder = root / STUDIES / study
    if not (folder / "params.yaml").exists():
        with errors_from("params.yaml"):
            parse_space(load_params(root / "params.yaml"), True)
        folder.mkdir(parents=True, exist_ok=True)
        if (root / "dvc.lock").exists():
            shutil.copyfile(root / "dvc.lock", folder / "dvc.lock")
        shutil.copyfile(root / "params.yaml", folder / "params.yaml")  # last: marks it done
    return folder


def open_study(folder: Path, args: argparse.Namespace, seed: int):
    """The study, created or loaded (TPE, seeded); a study file of its own unless --storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = args.storage or f"sqlite:///{folder / 'study.db'}"
    study = optuna.create_study(
        study_name=args.study,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=seed),
        direction="maximize",
        load_if_exists=True,
    )
    if args.storage is None and (left := fail_leftovers(study)):
        print(f"{left} trial(s) a killed tune left running marked failed; resuming")
    return study


def run(args: argparse.Namespace) -> int:
    from lora_core.commands.trials import ExpRunner

    root = find_project_root(Path.cwd())
    if root is None:
        raise LoraSst2Error("no lora-sst2 project here: run `lora-sst2 tune` inside one")
    os.chdir(root)
    folder = baseline_folder(root, args.study)
    with errors_from("params.yaml"):
        params = load_params(folder / "params.yaml")
        space, base_space = parse_space(params, True), parse_space(params, False)
    cfg = params.tune
    trials = cfg.trials if args.trials is None else args.trials
    if trials < 1:
        raise LoraSst2Error(f"--trials {trials} is not allowed: at least 1")
    defaults = {d.key: current(params, d.key) for d in space}
    runner = ExpRunner(root, folder, params.data.dedupe)
    if runner.stop_orphan():
        print("stopped the trial a killed tune left running")
    study = open_study(folder, args, cfg.seed)
    state = Search(study, space, base_space, defaults, cfg.objective,
                  params.evaluate.bootstrap_resamples, cfg.prune and not args.no_prune)  # fmt: skip
    try:
        state.run(trials, runner)
    finally:  # a stopped tune leaves the baseline too; --apply replaces it below
        if not args.apply or len(state.completed()) < trials:
            base = defaults_trial(study)
            runner.restore(base.user_attrs["name"] if base else None)
    print(table(study, defaults))
    best = winner(study)
    if best is not None:
        print(f"winner: trial {best.number} ({best.user_attrs['name']})")
        if note := shared_note(study):
            print(note)
    if args.apply:
        chosen, why = choose(study, params.gate.alpha, args.force)
        runner.apply(chosen.user_attrs["name"])
        print(f"{why}: applied {chosen.user_attrs['name']} (params, dvc.lock, metrics, adapter)")
    elif best is not None and defaults_trial(study) is not None:
        print(choose(study, params.gate.alpha, False)[1].split(";")[0])
    return 0
