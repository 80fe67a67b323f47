"""`lora-sst2 predict`, `export --merged` and `info` on the tiny reproduced project."""

import io
import json
import sys

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lora_core.adapter import load_trained
from lora_core.commands import cli
from lora_core.data import read_glue_tsv
from tests.conftest import set_params


@pytest.fixture
def project(built_project, monkeypatch):
    monkeypatch.chdir(built_project)
    return built_project


def _predict(capsys, *args):
    status = cli.main(["predict", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_predict_prints_label_and_score_per_input(project, capsys):
    status, out, err = _predict(capsys, "a gorgeous , witty film", "a mess")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, ["a gorgeous , witty film", "a mess"]):
        label, score, shown = line.split("\t")
        assert label == ("positive" if float(score) > 0.5 else "negative")
        assert 0.0 <= float(score) <= 1.0 and shown == text


def test_predict_json_file_and_stdin_agree(project, capsys, monkeypatch, tmp_path):
    texts = ["good film", "dull plot", "the story is fun"]
    _, from_args, _ = _predict(capsys, "--json", *texts)
    rows = [json.loads(line) for line in from_args.splitlines()]
    assert [r["text"] for r in rows] == texts
    assert all(set(r) == {"text", "label", "score"} for r in rows)
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert _predict(capsys, "--json", "--file", str(path))[1] == from_args
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert _predict(capsys, "--json", "--file", "-")[1] == from_args


def test_predict_file_drops_a_bom_and_trailing_blank_lines(project, capsys, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffgood film\r\ndull plot\n\n  \n".encode())
    status, out, err = _predict(capsys, "--json", "--file", str(path))
    assert (status, err) == (0, "")
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["good film", "dull plot"]


def test_predict_reproduces_evaluate_test_accuracy_exactly(project, capsys):
    test = read_glue_tsv(project / "data/prepared/test.tsv")
    path = project / "test_sentences.txt"
    path.write_text("\n".join(test.sentences) + "\n", encoding="utf-8")
    _, out, _ = _predict(capsys, "--json", "--file", str(path))
    labels = [int(json.loads(line)["label"] == "positive") for line in out.splitlines()]
    accuracy = sum(p == y for p, y in zip(labels, test.labels)) / len(test.labels)
    expected = json.loads((project / "metrics/eval.json").read_text())["test"]["accuracy"]
    assert round(accuracy, 6) == expected


def test_predict_truncates_long_input_and_says_so_once(project, capsys):
    # "good " * 30 is 30 tokens + [CLS] + [SEP]: exactly max_length, so not truncated.
    status, out, err = _predict(capsys, "good " * 10_000, "bad " * 500, "good " * 30, "fun")
    assert status == 0 and len(out.splitlines()) == 4
    assert err == "note: 2 input(s) truncated to 32 tokens\n"


def test_predict_refuses_adapter_of_another_base_model(
    built_project, tmp_path, monkeypatch, capsys
):
    import shutil

    project = tmp_path / "copy"
    shutil.copytree(built_project, project, symlinks=True)
    monkeypatch.chdir(project)
    set_params(project, {"model": {"name": "bert-base-uncased"}})
    status, _, err = _predict(capsys, "good")
    assert status == 2
    assert "trained on 'sentence-transformers/all-MiniLM-L6-v2', not 'bert-base-uncased'" in err


def test_export_merged_loads_with_plain_transformers_and_matches(project, capsys, tmp_path):
    out = tmp_path / "merged"
    assert cli.main(["export", "--merged", str(out)]) == 0
    assert capsys.readouterr().err == ""  # no progress bars
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert plain.config.id2label == {0: "negative", 1: "positive"}
    ours, _ = load_trained("models")
    ours.eval()
    batch = AutoTokenizer.from_pretrained(out)(
        ["good film", "a dull mess"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, ours(**batch).logits, atol=1e-5, rtol=0)


def test_info_describes_adapter_and_metrics(project, capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert fields["r"] == "4" and fields["alpha"] == "16.0"
    assert fields["targets"] == "['query', 'value']"
    assert int(fields["adapter_bytes"]) == (project / "models/adapter.safetensors").stat().st_size
    assert "test.accuracy" in fields
