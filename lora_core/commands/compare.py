"""`lora-sst2 compare`: the model (evaluate's files) beside the TF-IDF baseline (the baseline
stage's), paired on the same test rows: McNemar's exact p for accuracy, the paired bootstrap
for F1 (macro-F1 past two classes), as `lora-sst2 gate` pairs two commits.

A command, not a stage: evaluate never depends on the baseline's outputs, so neither stage
re-runs for the other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lora_core.baseline import BASELINE, BASELINE_PREDICTIONS
from lora_core.commands.paired import Paired, pair
from lora_core.config import load_params
from lora_core.errors import LoraSst2Error, damaged, is_number
from lora_core.readers import read_json
from lora_core.scores import PREDICTIONS, read_predictions

SIDES = {
    "model": ("eval.json", PREDICTIONS, "evaluate"),
    "TF-IDF": (BASELINE, BASELINE_PREDICTIONS, "baseline"),
}


def _require_file(path: Path, stage: str) -> None:
    if not path.is_file():
        what = "is not a file: move it away, then" if path.exists() else "not found:"
        raise LoraSst2Error(f"{path} {what} run `dvc repro {stage}`")


def _test_scores(path: Path, stage: str) -> dict:
    """The test entry of a metrics file, with its accuracy; else one line naming the file."""
    _require_file(path, stage)
    raw = read_json(path)
    test = raw.get("test") if isinstance(raw, dict) else None
    if not isinstance(test, dict) or not is_number(test.get("accuracy")):
        raise LoraSst2Error(f"{path} has no test accuracy: run `dvc repro --force {stage}`")
    return test


def _predictions(path: Path, stage: str):
    """(labels, predicted) of a predictions file; missing or damaged is one line naming it."""
    _require_file(path, stage)
    try:
        return read_predictions(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(path, stage, str(err)) from None


def _classes(test: dict) -> int | None:
    """The task's class count: the classes evaluate scored (None: as the ids imply)."""
    per_class = test.get("per_class")
    return len(per_class) if isinstance(per_class, dict) and len(per_class) >= 2 else None


def _side(key: str, test: dict) -> str:
    """'0.8624 [0.8383, 0.8853]': the score and, when the file has it, its 95% interval."""
    low, high = test.get(f"{key}_ci95_low"), test.get(f"{key}_ci95_high")
    interval = f" [{low:.4f}, {high:.4f}]" if is_number(low) and is_number(high) else ""
    return f"{test[key]:.4f}{interval}"


def compare_lines(metrics_dir: str | Path, resamples: int) -> tuple[list[str], Paired]:
    """The model beside the baseline on test accuracy and F1, and their pairing."""
    metrics = Path(metrics_dir)
    scores, predictions = {}, {}
    for side, (scores_file, predictions_file, stage) in SIDES.items():
        scores[side] = _test_scores(metrics / scores_file, stage)
        predictions[side] = _predictions(metrics / predictions_file, stage)
    model, baseline = scores["model"], scores["TF-IDF"]
    files = " and ".join(str(metrics / f) for f in (PREDICTIONS, BASELINE_PREDICTIONS))
    (labels, _), (baseline_labels, _) = predictions["model"], predictions["TF-IDF"]
    if len(labels) != len(baseline_labels) or (labels != baseline_labels).any():
        rows = f"{len(labels)} and {len(baseline_labels)} rows"
        raise LoraSst2Error(f"{files} score different test rows ({rows}): run `dvc repro`")
    try:  # base: the baseline; head: the model ("fixed": the baseline wrong, the model right)
        paired = pair(predictions["TF-IDF"], predictions["model"], resamples, _classes(model))
    except ValueError as err:  # a class id past the classes eval.json scores
        raise LoraSst2Error(f"cannot pair {files}: {err}") from None
    f1 = paired.f1_key.removeprefix("test.")
    lines = []
    for key, test, p in (
        ("accuracy", "McNemar", paired.p_value),
        (f1, "paired bootstrap", paired.f1_p_value),
    ):
        if not (is_number(model.get(key)) and is_number(baseline.get(key))):
            continue  # an older eval.json without F1
        points = 100 * (model[key] - baseline[key])
        lines.append(
            f"test {key}: model {_side(key, model)} vs TF-IDF {_side(key, baseline)}: "
            f"{points:+.1f} points, {test} p = {p:.4g} ({paired.examples} paired rows)"
        )
    lines.append(
        f"model right where TF-IDF is wrong: {paired.fixed} rows; the other way: {paired.broken}"
    )
    return lines, paired


def run_compare(args: argparse.Namespace) -> int:
    resamples = load_params(args.params).evaluate.bootstrap_resamples
    lines, _ = compare_lines(args.metrics, resamples)
    print("\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `compare` to the lora-sst2 command."""
    p = subparsers.add_parser(
        "compare", help="the model beside the TF-IDF baseline on the same test rows (McNemar p)"
    )
    p.add_argument("--metrics", default="metrics", help="folder with both stages' outputs")
    p.add_argument("--params", default="params.yaml", help="file with evaluate.bootstrap_resamples")
    p.set_defaults(run=run_compare)
