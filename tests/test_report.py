import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lora_core.commands import cli
from lora_core.commands.report import experiment_rows, markdown_table
from stages import train
from tests.conftest import set_params

FIXTURE = Path(__file__).parent / "fixtures/exp_show.json"  # `dvc exp show --json`, tiny runs


def test_report_rows_take_baseline_and_experiments_not_workspace():
    rows = experiment_rows(json.loads(FIXTURE.read_text()))
    assert [(r["name"], r["mode"], r["r"], r["trainable_params"]) for r in rows] == [
        ("head", "head", None, 1122),
        ("main", "lora", 4, 2146),
        ("r8", "lora", 8, 3170),
    ]


def test_report_rows_skip_older_commits_without_experiments():
    # `dvc exp show --all-commits`: HEAD, then older commits; only those with experiments count.
    show = json.loads(FIXTURE.read_text())
    head = show[1]
    plain = {**head, "rev": "1" * 40, "name": None, "experiments": None}
    based = {**head, "rev": "2" * 40, "name": "old"}
    rows = experiment_rows([*show, plain, based])
    assert sorted(r["name"] for r in rows) == ["head", "head", "main", "old", "r8", "r8"]


def test_report_markdown_table_is_exact():
    rows = experiment_rows(json.loads(FIXTURE.read_text()))
    assert markdown_table(rows[:2]) == (
        "| experiment | mode | r | trainable params | test accuracy | val accuracy | train s"
        " | peak MB | artifact bytes |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| head | head |  | 1122 | 0.5 | 0.5 | 5.4 | 432.3 | 4888 |\n"
        "| main | lora | 4 | 2146 | 0.5 | 0.5 | 0.2 | 472.3 | 9856 |\n"
    )


def test_report_cli_writes_png_and_table(tmp_path, capsys):
    png, md = tmp_path / "exp.png", tmp_path / "exp.md"
    assert cli.main(["report", "--input", str(FIXTURE), "--png", str(png), "--md", str(md)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert md.read_text() == capsys.readouterr().out
    assert md.read_text().count("\n") == 2 + 3


@pytest.mark.parametrize(
    ("flags", "dvc_args"),
    [
        ([], ("exp", "show", "--json")),
        (["--all-commits"], ("exp", "show", "--json", "--all-commits")),
    ],
)
def test_report_asks_dvc_for_head_or_all_commits(tmp_path, monkeypatch, capsys, flags, dvc_args):
    calls = []

    def fake_dvc_json(*args):
        calls.append(args)
        return json.loads(FIXTURE.read_text())

    monkeypatch.setattr("lora_core.commands.report.dvc_json", fake_dvc_json)
    assert cli.main(["report", "--png", str(tmp_path / "x.png"), *flags]) == 0
    assert calls == [dvc_args]
    assert capsys.readouterr().out.count("\n") == 2 + 3


def test_report_without_metrics_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "show.json"
    empty.write_text(json.dumps([{"rev": "workspace", "name": None, "data": {}}]))
    assert cli.main(["report", "--input", str(empty), "--png", str(tmp_path / "x.png")]) == 2
    assert "no experiment with metrics: run `dvc repro`" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["head", "full"])
def test_train_mode_trains_the_right_parameter_set(tmp_path, monkeypatch, built_project, mode):
    project = tmp_path / "p"
    shutil.copytree(built_project, project, symlinks=True)
    monkeypatch.chdir(project)
    set_params(project, {"train": {"mode": mode, "epochs": 1, "train_pooler": True}})
    assert train.main(["--no-progress"]) == 0
    metrics = json.loads((project / "metrics/train.json").read_text())
    # tiny BERT: classifier 32*2+2, pooler 32*32+32; "full" trains all 21,410 weights
    expected = {"head": 32 * 2 + 2 + 32 * 32 + 32, "full": 21_410}[mode]
    assert (metrics["mode"], metrics["trainable_params"]) == (mode, expected)
    assert metrics["total_params"] == 21_410
    artifact = load_file(str(project / "models/adapter.safetensors"))
    assert sum(t.numel() for t in artifact.values()) == expected
