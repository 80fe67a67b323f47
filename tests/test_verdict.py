"""The gate's verdict past two classes: macro-F1's paired test and test.f1's stand-in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lora_core.commands import gate, verdict
from lora_core.commands.paired import Paired, pair
from lora_core.config import GateConfig
from lora_core.scores import read_predictions
from lora_core.stats import paired_bootstrap_p

DEFAULTS = GateConfig()  # max_drop: test.accuracy 0.005, test.f1 0.01
LABELS = np.arange(30) % 3  # (30,)
BASE = np.where(np.arange(30) % 5 == 0, (LABELS + 1) % 3, LABELS)  # 6 wrong
HEAD = np.where(np.arange(30) % 10 == 1, (LABELS + 2) % 3, LABELS)  # 3 wrong, none of BASE's


def _csv(labels: np.ndarray, predicted: np.ndarray) -> str:
    rows = [f"{i},{y},{p},0.5" for i, (y, p) in enumerate(zip(labels, predicted))]
    return "\n".join(["index,label,predicted,probability", *rows]) + "\n"


def _row(key: str, old, new) -> verdict.Row:
    return verdict.Row(key, key, old, new)


def test_pair_of_three_class_predictions_tests_macro_f1():
    base, head = read_predictions(_csv(LABELS, BASE)), read_predictions(_csv(LABELS, HEAD))
    paired = pair(base, head, resamples=500)
    assert (paired.examples, paired.fixed, paired.broken, paired.classes) == (30, 6, 3, 3)
    assert paired.f1_key == "test.macro_f1"
    assert paired.f1_p_value == paired_bootstrap_p(BASE, HEAD, LABELS, 500, classes=3)
    assert paired.p_for("test.macro_f1") == paired.f1_p_value
    assert paired.p_for("test.f1") is None
    assert paired.p_for("test.accuracy") == 0.5078125  # McNemar: 2 * (1+9+36+84) / 2**9


def test_binary_max_drop_applies_as_written():
    rows = [_row("test.accuracy", 0.8, 0.8), _row("test.f1", 0.7, 0.7)]
    rows.append(_row("test.macro_f1", 0.7, 0.7))
    assert verdict.applied_max_drop(rows, DEFAULTS.max_drop) == (DEFAULTS.max_drop, [])


def test_test_f1_of_a_three_class_run_gates_macro_f1_in_its_place():
    rows = [_row("test.accuracy", 0.8, 0.79), _row("test.macro_f1", 0.7, 0.65)]
    applied, notes = verdict.applied_max_drop(rows, DEFAULTS.max_drop)
    assert applied == {"test.accuracy": 0.005, "test.macro_f1": 0.01}
    assert notes == [
        "test.f1 is in no metrics file (a run with more than two classes has no f1): "
        "test.macro_f1 is gated in its place, max drop 0.01"
    ]
    explicit = {**DEFAULTS.max_drop, "test.macro_f1": 0.02}
    applied, notes = verdict.applied_max_drop(rows, explicit)
    assert applied == {"test.accuracy": 0.005, "test.macro_f1": 0.02}
    assert notes[0].endswith(": not gated, test.macro_f1 is gated by its own max drop")
    # a key with no stand-in still names no metric, and fails
    assert verdict.applied_max_drop(rows, {"test.f2": 0.1}) == ({"test.f2": 0.1}, [])
    assert verdict.failures([], {"test.f1": 0.01}) == {"test.f1": "not in any metrics file"}


def test_three_class_report_notes_the_stand_in_and_warns_on_an_insignificant_drop():
    rows = [_row("test.accuracy", 0.8, 0.79), _row("test.macro_f1", 0.7, 0.65)]
    paired = Paired(examples=30, fixed=2, broken=5, f1_p_value=0.3, classes=3)
    report, failed = verdict.format_report("main", rows, [], DEFAULTS, paired)
    assert not failed
    assert report == (
        "## Metrics gate: `main` -> workspace\n\n"
        "| metric | old | new | diff | gate |\n|---|---:|---:|---:|---|\n"
        "| test.accuracy | 0.8 | 0.79 | -0.01 | warn: dropped by 0.01, more than 0.005, but "
        "not significant (McNemar p = 0.453 >= alpha 0.05) |\n"
        "| test.macro_f1 | 0.7 | 0.65 | -0.05 | warn: dropped by 0.05, more than 0.01, but "
        "not significant (paired bootstrap p = 0.3 >= alpha 0.05) |\n\n"
        "Note: test.f1 is in no metrics file (a run with more than two classes has no f1): "
        "test.macro_f1 is gated in its place, max drop 0.01.\n\n"
        "### Paired test: the test split, example by example\n\n"
        "| examples | fixed (wrong at `main`, right now) | broken (right, now wrong) | "
        "accuracy: McNemar exact p | macro-F1: paired bootstrap p |\n|---:|---:|---:|---:|---:|\n"
        "| 30 | 2 | 5 | 0.4531 | 0.3 |\n\n"
        "### Params changed\n\nNo params changed.\n\n"
        "**PASS** with warnings: test.accuracy dropped by 0.01, more than 0.005, but not "
        "significant (McNemar p = 0.453 >= alpha 0.05); test.macro_f1 dropped by 0.05, more "
        "than 0.01, but not significant (paired bootstrap p = 0.3 >= alpha 0.05)\n"
    )


def test_three_class_report_fails_a_significant_macro_f1_drop():
    rows = [_row("test.accuracy", 0.8, 0.8), _row("test.macro_f1", 0.7, 0.65)]
    paired = Paired(examples=30, fixed=0, broken=0, f1_p_value=0.01, classes=3)
    report, failed = verdict.format_report("main", rows, [], DEFAULTS, paired)
    assert failed
    assert report.endswith("**FAIL**: test.macro_f1 dropped by 0.05, more than 0.01\n")


def test_pair_takes_the_task_class_count_over_what_the_ids_imply(tmp_path):
    # a three-class task whose test rows and predictions only hold ids 0 and 1
    labels, base, head = np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1])
    implied = pair((labels, base), (labels, head), resamples=200)
    told = pair((labels, base), (labels, head), resamples=200, classes=3)
    assert (implied.classes, implied.f1_key) == (2, "test.f1")
    assert (told.classes, told.f1_key) == (3, "test.macro_f1")
    assert told.f1_p_value == paired_bootstrap_p(base, head, labels, 200, classes=3)
    with pytest.raises(ValueError, match="class id 2 in a task of 2 classes"):
        pair((labels + 1, base + 1), (labels + 1, head + 1), resamples=200, classes=2)


def test_gate_reads_the_class_count_evaluate_wrote(tmp_path):
    path = tmp_path / "eval.json"
    assert gate.task_classes(str(path)) is None  # no file
    path.write_text('{"test": {"accuracy": 0.5}}')
    assert gate.task_classes(str(path)) is None  # an eval.json from before per_class
    per_class = {name: {"f1": 0.5} for name in ("neg", "neu", "pos")}
    path.write_text(json.dumps({"test": {"per_class": per_class}}))
    assert gate.task_classes(str(path)) == 3
