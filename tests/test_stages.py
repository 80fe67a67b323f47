"""Each stage's main(), in order, on the tiny project: outputs exist and are well-formed."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lora_core.data import read_examples
from lora_core.tokens import load_tokenized
from stages import evaluate, fetch, prepare, tokenize, train
from tests.conftest import set_params, snapshot
from tests.tiny import write_tsv


@pytest.mark.trained
def test_stages_main_in_order(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)

    assert prepare.main([]) == 0
    summary = json.loads((tiny_project / "data/prepared/summary.json").read_text())
    half = lambda n: {"rows": n, "labels": {"negative": n // 2, "positive": n // 2}}  # noqa: E731
    assert summary["splits"] == {"train": half(180), "val": half(20), "test": half(40)}
    assert set(summary["raw_sha256"]) == {"train.tsv", "dev.tsv"}
    assert "pair_text_in_train" not in summary  # single texts: SST-2's summary as it was
    assert (summary["labels"], summary["text_columns"]) == (["negative", "positive"], ["sentence"])
    assert summary["split"] == "random"
    assert summary["sources"] == {
        "train": "train.tsv",
        "val": "0.1 of train.tsv (random split)",
        "test": "dev.tsv",
    }
    prepared = read_examples(tiny_project / "data/prepared/test.jsonl", ("negative", "positive"))
    assert len(prepared) == 40

    assert tokenize.main([]) == 0
    plain = tiny_project / "plain.txt"
    plain.write_text("x")  # a plain open(..., "w") file: the mode every output should have
    modes = {os.stat(p).st_mode & 0o777 for p in (tiny_project / "data/tokenized").iterdir()}
    assert modes == {os.stat(plain).st_mode & 0o777}  # safetensors itself writes 0600
    test = load_tokenized(tiny_project / "data/tokenized", "test")
    assert len(test) == 40 and test.lengths.max() <= 32
    assert np.array_equal(test.labels, prepared.labels)
    task = json.loads((tiny_project / "data/tokenized/task.json").read_text())
    assert task["labels"] == ["negative", "positive"] and task["max_length"] == 32
    assert set(task["lengths"]) == {"train", "val", "test"}
    assert task["lengths"]["test"]["rows"] == 40 and task["lengths"]["test"]["truncated"] == 0

    assert train.main(["--no-progress"]) == 0
    metrics = json.loads((tiny_project / "metrics/train.json").read_text())
    assert metrics["trainable_params"] == 2 * 2 * (32 * 4 + 4 * 32) + 32 * 2 + 2
    assert metrics["epochs"] == 2 and metrics["device"] == "cpu"
    assert set(metrics) == {
        *("mode", "trainable_params", "total_params", "trainable_percent", "adapter_bytes"),
        *("epochs", "best_epoch", "best_val_accuracy", "device", "precision", "attention"),
        *("cpu", "gpu", "torch", "processes", "train_examples_seen", "train_seconds"),
        *("examples_per_second", "peak_memory_mb"),
    }
    assert (metrics["attention"], metrics["processes"]) == ("eager", 1)  # auto on the CPU
    assert metrics["gpu"] is None and metrics["torch"] == torch.__version__
    config = json.loads((tiny_project / "models/adapter.json").read_text())
    assert config["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert config["lora"] == {
        "r": 4,
        "alpha": 16.0,
        "dropout": 0.1,
        "targets": ["query", "value"],
        "rslora": False,
        "dropout_mode": "token",
    }
    # DVCLive's histories. 180 examples in batches of 16, chunks of 4 batches: 2 full
    # chunks (8) + 52 left (4) = 12 steps an epoch; one loss reading an epoch (under 20 steps).
    live = tiny_project / "metrics/train/plots/metrics"
    names = {str(p.relative_to(live)) for p in live.rglob("*.tsv")}
    assert names == {"train/loss.tsv", "train/lr.tsv", "val/accuracy.tsv", "val/loss.tsv"}
    for name in names:
        rows = (live / name).read_text().splitlines()
        assert rows[0] == f"step\t{Path(name).stem}"
        assert [row.split("\t")[0] for row in rows[1:]] == ["12", "24"]
    assert (tiny_project / "metrics/live").is_dir()  # the live view it was copied from
    summary = json.loads((tiny_project / "metrics/train/metrics.json").read_text())
    assert (summary["step"], summary["epoch"], summary["epochs"]) == (24, 2, 2)
    assert set(summary) == {"train", "val", "step", "epoch"} | {
        k
        for k, v in json.loads((tiny_project / "metrics/train.json").read_text()).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }

    assert evaluate.main([]) == 0
    scores = json.loads((tiny_project / "metrics/eval.json").read_text())
    assert scores["val"]["examples"] == 20 and scores["test"]["examples"] == 40
    plots = {p.name for p in (tiny_project / "metrics/plots").iterdir()}
    assert plots == {
        "confusion.json",
        "confusion.png",
        "roc.json",
        "roc.png",
        "pr.json",
        "pr.png",
        "training.png",
    }
    confusion = json.loads((tiny_project / "metrics/plots/confusion.json").read_text())
    assert len(confusion) == 40 and set(confusion[0]) == {"actual", "predicted"}
    rows = (tiny_project / "metrics/predictions/test.csv").read_text().splitlines()
    assert rows[0] == "index,label,predicted,probability" and len(rows) == 1 + 40
    right = sum(int(r.split(",")[1]) == int(r.split(",")[2]) for r in rows[1:])
    assert right / 40 == scores["test"]["accuracy"]
    assert "test accuracy" in capsys.readouterr().out


def test_fetch_validates_and_names_the_folder_and_its_files(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert fetch.main([]) == 0
    assert capsys.readouterr().out == (
        "params valid; raw data in data/raw/sst2/: train.tsv, dev.tsv\n"
    )
    assert json.loads((tiny_project / "data/fetch.json").read_text()) == {
        "dir": "data/raw/sst2",
        "files": {"train": "train.tsv", "validation": "dev.tsv"},
    }


def test_fetch_of_another_empty_data_dir_offline_is_one_line_and_writes_nothing(
    tiny_project, monkeypatch, capsys
):
    # -S data.dir=data/raw/rte with the hub unreachable (the tests run offline)
    monkeypatch.chdir(tiny_project)
    set_params(tiny_project, {"data": {"dir": "data/raw/rte", "config": "rte"}})
    before = snapshot(tiny_project, skip=("params.yaml",))
    assert fetch.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "downloading nyu-mll/glue/rte into data/raw/rte/\n"
    assert err.startswith("error: no train file in data/raw/rte/, and nyu-mll/glue/rte cannot ")
    assert err.endswith(
        "put your files there (README 'Your own data') or GLUE's SST-2 TSVs (README 'Offline')\n"
    )
    assert len(err.splitlines()) == 1
    assert snapshot(tiny_project, skip=("params.yaml",)) == before


def test_fetch_refuses_a_bad_param_anywhere_before_any_stage_runs(
    tiny_project, monkeypatch, capsys
):
    monkeypatch.chdir(tiny_project)
    set_params(tiny_project, {"gate": {"alpha": 2}})  # a section no stage before gate reads
    assert fetch.main([]) == 2
    assert capsys.readouterr().err == (
        "error: params.yaml: gate.alpha = 2.0 is not allowed: must be > 0 and < 1\n"
    )
    assert not (tiny_project / "data/fetch.json").exists()


def _leaky_folder(project: Path) -> None:
    """train.tsv of 200 distinct texts; dev.tsv (the test split) of 40, 5 of them train's."""
    rows = [(f"film {i} is {'good' if i % 2 else 'bad'}", i % 2) for i in range(200)]
    test = [(f"movie {i} is fun", 1) for i in range(35)] + [(f" {s}  ", y) for s, y in rows[:5]]
    write_tsv(project / "data/raw/sst2/train.tsv", rows)
    write_tsv(project / "data/raw/sst2/dev.tsv", test)


def test_prepare_counts_test_rows_also_in_train_and_dedupe_drops_exactly_them(
    tiny_project, monkeypatch, capsys
):
    _leaky_folder(tiny_project)
    monkeypatch.chdir(tiny_project)
    assert prepare.main([]) == 0
    assert capsys.readouterr().out == (
        "note: 5 of 40 test (dev.tsv) rows (12.5%) are also in train (train.tsv): their "
        "scores say little about new data (data.dedupe: true drops them)\n"
        "prepared train 180, val 20, test 40 (2 classes, random split) -> data/prepared/\n"
    )
    summary = json.loads((tiny_project / "data/prepared/summary.json").read_text())
    assert summary["also_in_train"] == {"val": 0, "test": 5}
    kept = read_examples(tiny_project / "data/prepared/test.jsonl", ("negative", "positive"))

    set_params(tiny_project, {"data": {"dedupe": True}})
    assert prepare.main([]) == 0
    assert capsys.readouterr().out == (
        "data.dedupe: dropped 5 test (dev.tsv) rows that are also in train\n"
        "prepared train 180, val 20, test 35 (2 classes, random split) -> data/prepared/\n"
    )
    summary = json.loads((tiny_project / "data/prepared/summary.json").read_text())
    assert summary["also_in_train"] == {"val": 0, "test": 5}
    deduped = read_examples(tiny_project / "data/prepared/test.jsonl", ("negative", "positive"))
    assert deduped == kept.subset(range(35))  # the five repeats were its last rows


def test_tokenize_head_tail_records_it_in_task_json_and_refuses_pairs(
    built_project, tmp_path, monkeypatch, capsys
):
    from lora_core.pretrained import load_tokenizer
    from lora_core.tokens import head_tail, read_task
    from tests.conftest import work_copy

    project = work_copy(built_project, tmp_path, monkeypatch)
    assert "truncation" not in json.loads((project / "data/tokenized/task.json").read_text())
    set_params(project, {"model": {"max_length": 6, "truncation": "head+tail"}})
    assert tokenize.main([]) == 0
    assert read_task(project / "data/tokenized").truncation == "head+tail"
    texts = read_examples(project / "data/prepared/train.jsonl", ("negative", "positive")).texts
    split = load_tokenized(project / "data/tokenized", "train")
    name = "sentence-transformers/all-MiniLM-L6-v2"
    tokenizer = load_tokenizer(name, project / "models/base")
    long = [i for i, t in enumerate(texts) if len(tokenizer(t)["input_ids"]) > 6]
    assert long  # some rows are cut: the check has teeth
    for i in long[:5]:
        content = tokenizer(texts[i], add_special_tokens=False)["input_ids"]
        ids = split.ids[split.offsets[i] : split.offsets[i + 1]].tolist()
        assert ids == [2, *head_tail(content, 4), 3]  # one head token, three tail tokens
    summary = project / "data/prepared/summary.json"
    raw = json.loads(summary.read_text())
    summary.write_text(json.dumps({**raw, "text_columns": ["sentence", "other"]}))
    before = snapshot(project)
    capsys.readouterr()
    assert tokenize.main([]) == 2
    assert capsys.readouterr().err == (
        "error: params.yaml: model.truncation = head+tail is not allowed for sentence pairs: "
        "use head (a pair cuts its longer text first)\n"
    )
    assert snapshot(project) == before
