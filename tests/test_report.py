import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from safetensors.torch import load_file

from lora_core.commands import cli
from lora_core.commands.report import (
    describe,
    experiment_rows,
    group_rows,
    label_sides,
    markdown_table,
    plot_groups,
)
from stages import train
from tests.conftest import set_params

FIXTURE = Path(__file__).parent / "fixtures/exp_show.json"  # `dvc exp show --json`, tiny runs


def test_report_rows_take_baseline_first_then_experiments_not_workspace():
    rows = experiment_rows(json.loads(FIXTURE.read_text()))
    assert [(r["name"], r["params"]["train.mode"], r["trainable_params"]) for r in rows] == [
        ("main", "lora", 2146),
        ("head", "head", 1122),
        ("r8", "lora", 3170),
    ]


def test_report_rows_skip_older_commits_without_experiments():
    # `dvc exp show --all-commits`: HEAD, then older commits; only those with experiments count.
    show = json.loads(FIXTURE.read_text())
    head = show[1]
    plain = {**head, "rev": "1" * 40, "name": None, "experiments": None}
    based = {**head, "rev": "2" * 40, "name": "old"}
    rows = experiment_rows([*show, plain, based])
    assert sorted(r["name"] for r in rows) == ["head", "head", "main", "old", "r8", "r8"]


def _seeded(row: dict, seed: int, accuracy: float) -> dict:
    return {**row, "params": {**row["params"], "train.seed": seed}, "test_accuracy": accuracy}


def test_report_groups_experiments_that_differ_only_in_seed():
    main, head, r8 = experiment_rows(json.loads(FIXTURE.read_text()))
    rows = [main, _seeded(main, 1, 0.6), _seeded(main, 2, 0.7), head, r8, _seeded(r8, 1, 0.9)]
    groups = group_rows(rows)
    assert [(g["experiment"], g["n"]) for g in groups] == [
        ("head", 1),
        ("lora r=4", 3),
        ("lora r=8", 2),
    ]
    mean, std = groups[1]["test_accuracy"]
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)  # 0.5, 0.6, 0.7
    assert groups[0]["test_accuracy"] == (0.5, None)  # n = 1: no spread


def test_report_describes_an_experiment_by_what_differs_from_the_baseline():
    baseline = {"train.mode": "lora", "lora.r": 4, "train.lr": 0.002, "train.seed": 42}
    assert describe({**baseline, "train.seed": 7}, baseline) == "lora r=4"
    assert describe({**baseline, "lora.r": 8, "train.lr": 0.001}, baseline) == (
        "lora r=8, train.lr=0.001"
    )
    assert describe({**baseline, "train.mode": "full", "lora.r": 8}, baseline) == "full"


def test_report_markdown_table_is_exact():
    main, head, _ = experiment_rows(json.loads(FIXTURE.read_text()))
    groups = group_rows([main, _seeded(main, 1, 0.6), head])
    assert markdown_table(groups) == (
        "| experiment | n | test accuracy | val accuracy | trainable params | train s "
        "| artifact bytes |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        "| head | 1 | 0.5000 | 0.5000 | 1,122 | 5.4 | 4888 |\n"
        "| lora r=4 | 2 | 0.5500 ± 0.0707 | 0.5000 ± 0.0000 | 2,146 | 0.2 | 9856 |\n"
    )


def test_report_cli_writes_png_and_table(tmp_path, capsys):
    png, md = tmp_path / "exp.png", tmp_path / "exp.md"
    assert cli.main(["report", "--input", str(FIXTURE), "--png", str(png), "--md", str(md)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert md.read_text() == capsys.readouterr().out
    assert md.read_text().count("\n") == 2 + 3


def test_report_labels_points_in_the_right_half_to_their_left():
    sizes = [1_538, 10_754, 37_634, 148_226, 22_750_850]  # log10 3.2 .. 7.4: middle 5.3
    assert label_sides(sizes) == ["left", "left", "left", "left", "right"]
    assert label_sides([100, 10_000]) == ["left", "right"]
    assert label_sides([2146, 2146]) == ["left", "left"]  # one size: nothing to the right


# A long label on the largest point ran off the right edge before labels were aligned
LONG = "full, train.lr=5e-05, train.model_dropout=0.1"
GROUPS = [
    {"experiment": "head", "n": 3, "test_accuracy": (0.8, 0.01), "trainable_params": 1_538},
    {"experiment": "lora r=4", "n": 1, "test_accuracy": (0.86, None), "trainable_params": 37_634},
    {"experiment": LONG, "n": 3, "test_accuracy": (0.88, 0.004), "trainable_params": 22_750_850},
]


def test_report_png_keeps_every_label_inside_and_is_reproducible(tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    plot_groups(GROUPS, first)
    plot_groups(GROUPS, second)
    assert first.read_bytes() == second.read_bytes()
    image = plt.imread(first)[:, :, :3]
    height, width, _ = image.shape  # the 8x5 inch figure at 100 dpi, cropped to what it draws
    assert height <= 500 and width <= 800  # no label reached past the figure's edge
    for border in (image[:3], image[-3:], image[:, :3], image[:, -3:]):
        assert (border == 1).all()  # white margin all round: no label cut at an edge


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
