"""gate: pure decisions and reports, then the CLI on tiny DVC projects, then the workflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from lora_core.commands import verdict
from lora_core.commands.paired import Paired, pair
from lora_core.config import GateConfig
from tests.conftest import ROOT, clone, lora, run, set_metrics, set_params

THRESHOLDS = {"test.accuracy": 0.005, "test.f1": 0.01}


# --- pure -------------------------------------------------------------------------------------


def _row(key: str, old, new) -> verdict.Row:
    return verdict.Row(key, key, old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (0.5, 0.495, None),  # exactly max_drop: float noise must not fail it
        (0.5, 0.4949, "dropped by 0.0051, more than 0.005"),
        (0.5, 0.9, None),
        (None, 0.5, None),
        (0.5, None, "missing in the workspace"),
    ],
)
def test_regression_higher_is_better(old, new, expected):
    assert verdict.regression(_row("test.accuracy", old, new), 0.005) == expected


def test_regression_loss_is_lower_is_better():
    assert verdict.regression(_row("test.loss", 0.70, 0.60), 0.01) is None
    assert verdict.regression(_row("test.loss", 0.70, 0.72), 0.01) == "rose by 0.02, more than 0.01"


def test_failures_name_a_threshold_without_a_metric():
    rows = [_row("test.accuracy", 0.9, 0.8)]
    assert verdict.failures(rows, {"test.accuracy": 0.005, "test.acc": 0.1}) == {
        "test.accuracy": "dropped by 0.1, more than 0.005",
        "test.acc": "not in any metrics file",
    }


def test_diff_rows_prefix_keys_that_two_files_share():
    diff = {
        "metrics/train.json": {"loss": {"old": 1, "new": 2}, "epochs": {"old": 3, "new": 3}},
        "metrics/eval.json": {"loss": {"old": 0.5, "new": None}},
    }
    assert verdict.diff_rows(diff) == [
        verdict.Row("metrics/eval.json:loss", "loss", 0.5, None),
        verdict.Row("epochs", "epochs", 3, 3),
        verdict.Row("metrics/train.json:loss", "loss", 1, 2),
    ]


def test_nothing_to_compare_without_old_metrics_or_on_an_unchanged_head():
    same = [_row("test.accuracy", 0.8, 0.8)]
    assert verdict.nothing_to_compare("main", [_row("a", None, 1)], False) == (
        "nothing to compare: main has no metrics"
    )
    assert verdict.nothing_to_compare("HEAD", same, True) == (
        "nothing to compare: HEAD is the checked-out commit and the workspace metrics are unchanged"
    )
    assert verdict.nothing_to_compare("main", same, False) is None


def test_format_report_fails_and_names_the_metric():
    metrics = [_row("test.loss", 0.7, 0.6), _row("device", "cpu", "cpu")]
    metrics.append(_row("test.accuracy", 0.8, 0.78))
    params = [_row("lora.r", 4, 8)]
    config = GateConfig(max_drop={"test.accuracy": 0.005})
    report, failed = verdict.format_report("main", metrics, params, config, "`main` has no file")
    assert failed
    assert report == (
        "## Metrics gate: `main` -> workspace\n\n"
        "| metric | old | new | diff | gate |\n|---|---:|---:|---:|---|\n"
        "| test.accuracy | 0.8 | 0.78 | -0.02 | FAIL: dropped by 0.02, more than 0.005 |\n"
        "| test.loss | 0.7 | 0.6 | -0.1 |  |\n"
        "| device | cpu | cpu | - |  |\n\n"
        "### Paired test: the test split, example by example\n\n"
        "No paired test: `main` has no file; the gate falls back to max_drop alone.\n\n"
        "### Params changed\n\n| param | old | new |\n|---|---|---|\n| lora.r | 4 | 8 |\n\n"
        "**FAIL**: test.accuracy dropped by 0.02, more than 0.005\n"
    )


def test_format_report_passes_within_thresholds():
    metrics = [_row("test.accuracy", 0.8, 0.797), _row("test.f1", 0.7, 0.75)]
    paired = Paired(examples=100, fixed=3, broken=5, f1_p_value=0.5)
    report, failed = verdict.format_report("main", metrics, [], GateConfig(THRESHOLDS), paired)
    assert not failed
    assert report.endswith(
        "| test.accuracy | 0.8 | 0.797 | -0.003 | ok (max drop 0.005) |\n"
        "| test.f1 | 0.7 | 0.75 | +0.05 | ok (max drop 0.01) |\n\n"
        "### Paired test: the test split, example by example\n\n"
        "| examples | fixed (wrong at `main`, right now) | broken (right, now wrong) | "
        "accuracy: McNemar exact p | F1: paired bootstrap p |\n|---:|---:|---:|---:|---:|\n"
        "| 100 | 3 | 5 | 0.7266 | 0.5 |\n\n"
        "### Params changed\n\nNo params changed.\n\n"
        "**PASS**: no gated metric moved the wrong way by more than its max drop "
        "(test.accuracy 0.005, test.f1 0.01)\n"
    )


@pytest.mark.parametrize(
    ("fixed", "broken", "require", "failed", "warned"),
    [
        (0, 8, True, True, False),  # p = 0.0078: a significant drop fails
        (3, 5, True, False, True),  # p = 0.73: past max_drop, not significant: warns
        (3, 5, False, True, False),  # significance not required: max_drop alone
    ],
)
def test_significance_decides_a_drop_past_max_drop(fixed, broken, require, failed, warned):
    rows = [_row("test.accuracy", 0.8, 0.78), _row("train.json:x", 1, 1)]
    config = GateConfig({"test.accuracy": 0.005}, require_significance=require)
    paired = Paired(100, fixed, broken)
    report, did_fail = verdict.format_report("main", rows, [], config, paired)
    assert did_fail == failed
    assert ("warn: dropped by 0.02, more than 0.005, but not significant" in report) == warned
    if warned:
        assert report.endswith(
            "**PASS** with warnings: test.accuracy dropped by 0.02, more than 0.005, but not "
            "significant (McNemar p = 0.727 >= alpha 0.05)\n"
        )


def test_pair_counts_flips_and_refuses_different_test_sets():
    labels = np.array([1, 1, 0, 0, 1])
    base, head = np.array([1, 0, 0, 1, 1]), np.array([0, 1, 0, 0, 1])
    paired = pair((labels, base), (labels, head), resamples=1000)
    assert (paired.examples, paired.fixed, paired.broken) == (5, 2, 1)
    assert paired.p_for("test.accuracy") == 1.0 and paired.p_for("test.loss") is None
    assert 0 < paired.p_for("test.f1") <= 1
    with pytest.raises(ValueError, match="different test sets"):
        pair((labels[:4], base[:4]), (labels, head), resamples=1000)


# --- the CLI on tiny projects -----------------------------------------------------------------


PREDICTIONS = "metrics/predictions/test.csv"


def _break(project: Path, count: int) -> None:
    """Make the first ``count`` right predictions of the test split wrong."""
    path = project / PREDICTIONS
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines[1:], start=1):
        index, label, predicted, p = line.split(",")
        if count and label == predicted:
            lines[i] = f"{index},{label},{1 - int(label)},{p}"
            count -= 1
    path.write_text("\n".join(lines) + "\n")


def _commit_accuracy(project: Path, before: float, after: float, broken: int = 0) -> None:
    """Two commits: metrics at ``before`` (and known thresholds), then at ``after`` with
    ``broken`` test examples turned wrong (-1: the base commit has no predictions)."""
    set_params(project, {"gate": {"max_drop": THRESHOLDS}})
    set_metrics(project, before)
    if broken < 0:
        run(["git", "rm", "-q", "--cached", PREDICTIONS], project)
    run(["git", "commit", "-qam", "base"], project)
    set_params(project, {"lora": {"r": 8}})
    set_metrics(project, after)
    _break(project, max(broken, 0))
    run(["git", "add", PREDICTIONS], project)
    run(["git", "commit", "-qam", "candidate"], project)


def test_gate_fails_on_a_significant_drop_beyond_max_drop(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.78, broken=8)
    code, out, err = lora(
        monkeypatch, capsys, project, "gate", "--base", "HEAD~1", "--output", "gate.md"
    )
    assert (code, err) == (1, "")
    assert out.startswith(
        "## Metrics gate: `HEAD~1` -> workspace\n\n"
        "| metric | old | new | diff | gate |\n|---|---:|---:|---:|---|\n"
        "| test.accuracy | 0.8 | 0.78 | -0.02 | FAIL: dropped by 0.02, more than 0.005 |\n"
    )
    assert "\n| lora.r | 4 | 8 |\n" in out
    assert "baseline" not in out  # metrics/baseline.json shares the keys, but is not the model
    assert "\n| 40 | 0 | 8 | 0.007812 | " in out  # 8 flipped to wrong: p = 2 / 2**8
    assert out.endswith("\n**FAIL**: test.accuracy dropped by 0.02, more than 0.005\n")
    assert (project / "gate.md").read_text() == out


def test_gate_warns_on_an_insignificant_drop(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.78, broken=1)
    code, out, _ = lora(monkeypatch, capsys, project, "gate", "--base", "HEAD~1")
    assert code == 0
    assert "\n| 40 | 0 | 1 | 1 | " in out
    assert out.endswith(
        "**PASS** with warnings: test.accuracy dropped by 0.02, more than 0.005, but not "
        "significant (McNemar p = 1 >= alpha 0.05)\n"
    )


def test_gate_with_a_damaged_predictions_file_falls_back(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.78)
    (project / PREDICTIONS).write_text("index,label,predicted,probability\n0,1\n")
    code, out, err = lora(monkeypatch, capsys, project, "gate", "--base", "HEAD~1")
    assert (code, err) == (1, "")
    assert (
        "No paired test: cannot pair metrics/predictions/test.csv of `HEAD~1` and the "
        "workspace (a row is cut short); the gate falls back to max_drop alone.\n" in out
    )


def test_gate_without_base_predictions_falls_back(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.78, broken=-1)
    code, out, _ = lora(monkeypatch, capsys, project, "gate", "--base", "HEAD~1")
    assert code == 1
    assert (
        "No paired test: `HEAD~1` has no metrics/predictions/test.csv; the gate falls back "
        "to max_drop alone.\n" in out
    )


def test_gate_passes_within_max_drop(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.797)
    code, out, _ = lora(monkeypatch, capsys, project, "gate", "--base", "HEAD~1")
    assert code == 0
    assert "| test.accuracy | 0.8 | 0.797 | -0.003 | ok (max drop 0.005) |\n" in out
    assert out.endswith(
        "\n**PASS**: no gated metric moved the wrong way by more than its max drop "
        "(test.accuracy 0.005, test.f1 0.01)\n"
    )


def test_gate_nothing_to_compare_and_unknown_revision(committed, monkeypatch, capsys):
    assert lora(monkeypatch, capsys, committed, "gate", "--base", "HEAD") == (
        0,
        "nothing to compare: HEAD is the checked-out commit and the workspace metrics are "
        "unchanged\n",
        "",
    )
    # HEAD~1 is the tiny project before its first `dvc repro`.
    assert lora(monkeypatch, capsys, committed, "gate", "--base", "HEAD~1") == (
        0,
        "nothing to compare: HEAD~1 has no metrics\n",
        "",
    )
    assert lora(monkeypatch, capsys, committed, "gate", "--base", "no-such-branch") == (
        2,
        "",
        "lora-sst2: error: unknown git revision 'no-such-branch' (in CI, check out with "
        "fetch-depth: 0 so it exists)\n",
    )


# --- the GitHub workflow ----------------------------------------------------------------------


def test_workflow_parses_and_uses_only_known_actions():
    workflow = yaml.safe_load((ROOT / ".github/workflows/pipeline.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request", "workflow_dispatch"}
    assert set(workflow["jobs"]) == {"check", "gpu-pipeline"}
    assert workflow["jobs"]["gpu-pipeline"]["runs-on"] == ["self-hosted", "gpu"]
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert {s["uses"] for s in steps if "uses" in s} == {
        "actions/checkout@v4",
        "actions/setup-python@v5",
    }
    checkouts = [s for s in steps if s.get("uses") == "actions/checkout@v4"]
    assert all(s["with"]["fetch-depth"] == 0 for s in checkouts)
    runs = [s.get("run", "") for s in workflow["jobs"]["check"]["steps"]]
    assert "lora-sst2 check-fresh" in runs
    assert "python -m pytest -q" in runs
    assert 'lora-sst2 gate --base "origin/$BASE_REF" --output gate.md' in runs
    summary = workflow["jobs"]["check"]["steps"][-1]
    assert summary["if"] == "always()"
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
