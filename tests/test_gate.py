"""gate: pure decisions and reports, then the CLI on tiny DVC projects, then the workflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lora_core.commands import gate
from tests.conftest import ROOT, clone, lora, run, set_metrics, set_params

THRESHOLDS = {"test.accuracy": 0.005, "test.f1": 0.01}


# --- pure -------------------------------------------------------------------------------------


def _row(key: str, old, new) -> gate.Row:
    return gate.Row(key, key, old, new)


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
    assert gate.regression(_row("test.accuracy", old, new), 0.005) == expected


def test_regression_loss_is_lower_is_better():
    assert gate.regression(_row("test.loss", 0.70, 0.60), 0.01) is None
    assert gate.regression(_row("test.loss", 0.70, 0.72), 0.01) == "rose by 0.02, more than 0.01"


def test_failures_name_a_threshold_without_a_metric():
    rows = [_row("test.accuracy", 0.9, 0.8)]
    assert gate.failures(rows, {"test.accuracy": 0.005, "test.acc": 0.1}) == {
        "test.accuracy": "dropped by 0.1, more than 0.005",
        "test.acc": "not in any metrics file",
    }


def test_diff_rows_prefix_keys_that_two_files_share():
    diff = {
        "metrics/train.json": {"loss": {"old": 1, "new": 2}, "epochs": {"old": 3, "new": 3}},
        "metrics/eval.json": {"loss": {"old": 0.5, "new": None}},
    }
    assert gate.diff_rows(diff) == [
        gate.Row("metrics/eval.json:loss", "loss", 0.5, None),
        gate.Row("epochs", "epochs", 3, 3),
        gate.Row("metrics/train.json:loss", "loss", 1, 2),
    ]


def test_nothing_to_compare_without_old_metrics_or_on_an_unchanged_head():
    same = [_row("test.accuracy", 0.8, 0.8)]
    assert gate.nothing_to_compare("main", [_row("a", None, 1)], False) == (
        "nothing to compare: main has no metrics"
    )
    assert gate.nothing_to_compare("HEAD", same, True) == (
        "nothing to compare: HEAD is the checked-out commit and the workspace metrics are unchanged"
    )
    assert gate.nothing_to_compare("main", same, False) is None


def test_format_report_fails_and_names_the_metric():
    metrics = [_row("test.loss", 0.7, 0.6), _row("device", "cpu", "cpu")]
    metrics.append(_row("test.accuracy", 0.8, 0.78))
    params = [_row("lora.r", 4, 8)]
    report, failed = gate.format_report("main", metrics, params, {"test.accuracy": 0.005})
    assert failed
    assert report == (
        "## Metrics gate: `main` -> workspace\n\n"
        "| metric | old | new | diff | gate |\n|---|---:|---:|---:|---|\n"
        "| test.accuracy | 0.8 | 0.78 | -0.02 | FAIL: dropped by 0.02, more than 0.005 |\n"
        "| test.loss | 0.7 | 0.6 | -0.1 |  |\n"
        "| device | cpu | cpu | - |  |\n\n"
        "### Params changed\n\n| param | old | new |\n|---|---|---|\n| lora.r | 4 | 8 |\n\n"
        "**FAIL**: test.accuracy dropped by 0.02, more than 0.005\n"
    )


def test_format_report_passes_within_thresholds():
    metrics = [_row("test.accuracy", 0.8, 0.797), _row("test.f1", 0.7, 0.75)]
    report, failed = gate.format_report("main", metrics, [], THRESHOLDS)
    assert not failed
    assert report.endswith(
        "| test.accuracy | 0.8 | 0.797 | -0.003 | ok (max drop 0.005) |\n"
        "| test.f1 | 0.7 | 0.75 | +0.05 | ok (max drop 0.01) |\n\n"
        "### Params changed\n\nNo params changed.\n\n"
        "**PASS**: no gated metric moved the wrong way by more than its max drop "
        "(test.accuracy 0.005, test.f1 0.01)\n"
    )


# --- the CLI on tiny projects -----------------------------------------------------------------


def _commit_accuracy(project: Path, before: float, after: float) -> None:
    """Two commits: metrics at ``before`` (and known thresholds), then at ``after``."""
    set_params(project, {"gate": {"max_drop": THRESHOLDS}})
    set_metrics(project, before)
    run(["git", "commit", "-qam", "base"], project)
    set_params(project, {"lora": {"r": 8}})
    set_metrics(project, after)
    run(["git", "commit", "-qam", "candidate"], project)


def test_gate_fails_on_a_drop_beyond_max_drop(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    _commit_accuracy(project, before=0.8, after=0.78)
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
    assert out.endswith("\n**FAIL**: test.accuracy dropped by 0.02, more than 0.005\n")
    assert (project / "gate.md").read_text() == out


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
