"""The Python API (lora_core.load, Predictor.predict): the labels and probabilities of
`lora-sst2 predict`, from the project's models/, a --peft export and a pair adapter."""

import json

import pytest

import lora_core
from lora_core.commands.predict import json_line
from lora_core.errors import LoraSst2Error
from lora_core.predictor import split_inputs
from tests.conftest import lora, work_copy
from tests.test_infer import PAIRS, pair_adapter

TEXTS = ["a gorgeous , witty film", "a mess", "good film", "dull plot " * 20]


@pytest.fixture
def project(built_project, tmp_path, monkeypatch):
    return work_copy(built_project, tmp_path, monkeypatch)


def _cli_rows(monkeypatch, capsys, project, *args) -> list[dict]:
    code, out, _ = lora(monkeypatch, capsys, project, "predict", "--json", *args)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_load_predicts_what_the_cli_predicts(project, monkeypatch, capsys):
    rows = lora_core.load().predict(TEXTS)
    cli = _cli_rows(monkeypatch, capsys, project, *TEXTS)
    assert [json.loads(json_line(r)) for r in rows] == cli  # same rounding, same numbers
    assert [r["label"] for r in rows] == [r["label"] for r in cli]
    assert all(set(r["probabilities"]) == {"negative", "positive"} for r in rows)
    assert all(r["score"] == max(r["probabilities"].values()) for r in rows)


def test_load_finds_the_project_from_a_subfolder(project, monkeypatch):
    expected = lora_core.load().predict(TEXTS)
    monkeypatch.chdir(project / "metrics")
    assert lora_core.load().predict(TEXTS) == expected


def test_load_reads_a_peft_export_outside_the_project(project, monkeypatch, capsys, tmp_path):
    export = tmp_path / "peft"
    assert lora(monkeypatch, capsys, project, "export", "--peft", str(export))[0] == 0
    expected = lora_core.load().predict(TEXTS)
    cli = _cli_rows(monkeypatch, capsys, project, "--adapter", str(export), *TEXTS)
    monkeypatch.chdir(project)
    rows = lora_core.load(export).predict(TEXTS)
    assert [json.loads(json_line(r)) for r in rows] == cli
    assert [r["label"] for r in rows] == [r["label"] for r in expected]


def test_predict_scores_pairs_as_the_cli(project, monkeypatch, capsys, tmp_path):
    adapter = pair_adapter(tmp_path / "pair-adapter", project / "models/base")
    table = tmp_path / "pairs.tsv"
    table.write_text("sentence1\tsentence2\n" + "".join(f"{a}\t{b}\n" for a, b in PAIRS))
    cli = _cli_rows(monkeypatch, capsys, project, "--adapter", str(adapter), "--file", str(table))
    rows = lora_core.load(adapter).predict(PAIRS)
    assert [json.loads(json_line(r)) for r in rows] == cli
    with pytest.raises(LoraSst2Error, match="input 1 is 'good': this adapter scores a"):
        lora_core.load(adapter).predict(["good"])


def test_load_outside_a_project_needs_an_adapter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoraSst2Error, match="no lora-sst2 project"):
        lora_core.load()


@pytest.mark.parametrize(
    ("texts", "paired", "expected"),
    [
        ("one text", False, (["one text"], None)),
        (("a", "b"), False, (["a", "b"], None)),
        ([("a", "b"), ("c", "d")], True, (["a", "c"], ["b", "d"])),
    ],
)
def test_split_inputs_takes_texts_or_pairs(texts, paired, expected):
    assert split_inputs(texts, paired) == expected


@pytest.mark.parametrize(
    ("texts", "paired", "message"),
    [
        ([], False, "no input: give a list of texts"),
        (["good", " "], False, "input 2 is empty: every input needs some text"),
        ([("a", "")], True, "input 1 is empty: every input needs some text"),
        ([("a", "b")], False, "input 1 is ('a', 'b'): this adapter scores a string"),
        (["ab"], True, "input 1 is 'ab': this adapter scores a (text, text_pair) tuple"),
    ],
)
def test_split_inputs_refuses_what_predict_cannot_score(texts, paired, message):
    with pytest.raises(LoraSst2Error) as info:
        split_inputs(texts, paired)
    assert str(info.value) == message
