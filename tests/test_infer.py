"""`lora-sst2 predict`, `export --merged` and `info` on the tiny reproduced project."""

import io
import json
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lora_core.adapter import load_trained
from lora_core.commands import cli
from lora_core.commands.predict import json_line, prediction
from lora_core.data import read_glue_tsv
from tests.conftest import set_params, work_copy


@pytest.fixture
def project(built_project, monkeypatch):
    monkeypatch.chdir(built_project)
    return built_project


def _predict(capsys, *args):
    status = cli.main(["predict", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def _expected(project, texts):
    """Each text's class probabilities, straight from the merged model: what predict reports."""
    from lora_core.config import load_params
    from lora_core.metrics import softmax
    from lora_core.pretrained import load_tokenizer
    from lora_core.runtime import load_for_inference
    from lora_core.tokens import tokenize

    inference = load_for_inference(project / "models", load_params(project / "params.yaml"))
    tokenizer = load_tokenizer(inference.config.base_model, project / "models/base")
    split = tokenize(tokenizer, texts, [0] * len(texts), inference.config.max_length)
    return softmax(inference.logits(split))


def test_predict_prints_label_and_its_probability_per_input(project, capsys):
    texts = ["a gorgeous , witty film", "a mess", "good film", "dull plot"]
    status, out, err = _predict(capsys, *texts)
    assert status == 0 and err == ""
    expected = _expected(project, texts)
    lines = []
    for text, probs in zip(texts, expected):
        best = int(probs.argmax())
        lines.append(f"{('negative', 'positive')[best]}\t{probs[best]:.4f}\t{text}")
    assert out.splitlines() == lines
    assert all(float(line.split("\t")[1]) >= 0.5 for line in lines)  # never P(positive)


def test_predict_json_gives_the_labels_probability_and_every_class(project, capsys):
    texts = ["a gorgeous , witty film", "a mess", "good film", "dull plot"]
    _, out, _ = _predict(capsys, "--json", *texts)
    rows = [json.loads(line) for line in out.splitlines()]
    for row, text, (negative, positive) in zip(rows, texts, _expected(project, texts)):
        label = "positive" if positive > negative else "negative"
        assert list(row) == ["text", "label", "score", "probabilities"]
        assert (row["text"], row["label"]) == (text, label)
        assert row["probabilities"] == {
            "negative": round(float(negative), 6),
            "positive": round(float(positive), 6),
        }
        assert row["score"] == row["probabilities"][label] == round(max(negative, positive), 6)


def test_prediction_reads_any_number_of_labels():
    probs = np.array([0.2, 0.5, 0.3])
    row = prediction("so-so", probs, ("negative", "neutral", "positive"))
    assert row == {
        "text": "so-so",
        "label": "neutral",
        "score": 0.5,
        "probabilities": {"negative": 0.2, "neutral": 0.5, "positive": 0.3},
    }
    assert json_line({**row, "score": 1 / 3}) == (
        '{"text": "so-so", "label": "neutral", "score": 0.333333, '
        '"probabilities": {"negative": 0.2, "neutral": 0.5, "positive": 0.3}}'
    )


def _stdin(monkeypatch, data: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_predict_json_file_and_stdin_agree(project, capsys, monkeypatch, tmp_path):
    texts = ["good film", "dull plot", "the story is fun"]
    _, from_args, _ = _predict(capsys, "--json", *texts)
    rows = [json.loads(line) for line in from_args.splitlines()]
    assert [r["text"] for r in rows] == texts
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert _predict(capsys, "--json", "--file", str(path))[1] == from_args
    _stdin(monkeypatch, path.read_bytes())
    assert _predict(capsys, "--json", "--file", "-")[1] == from_args
    _stdin(monkeypatch, path.read_bytes())
    assert _predict(capsys, "--json", "-") == (0, from_args, "")  # a lone '-' reads stdin too


def test_predict_dash_among_sentences_is_refused(project, capsys):
    assert _predict(capsys, "good", "-") == (
        2,
        "",
        "lora-sst2: error: '-' reads the sentences from standard input: give it alone, not "
        "among sentences\n",
    )


def test_predict_file_drops_a_bom_and_trailing_blank_lines(project, capsys, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffgood film\r\ndull plot\n\n  \n".encode())
    status, out, err = _predict(capsys, "--json", "--file", str(path))
    assert (status, err) == (0, "")
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["good film", "dull plot"]


def test_predict_file_names_the_file_and_line_of_a_blank_line(
    project, capsys, tmp_path, monkeypatch
):
    path = tmp_path / "sentences.txt"
    path.write_text("good film\ndull plot\n  \nfun\n\n", encoding="utf-8")
    assert _predict(capsys, "--file", str(path)) == (
        2,
        "",
        f"lora-sst2: error: {path}:3: empty line; give one sentence a line "
        "(blank lines at the end are ignored)\n",
    )
    _stdin(monkeypatch, b"good film\n\nfun\n")
    assert _predict(capsys, "-")[2] == (
        "lora-sst2: error: <stdin>:2: empty line; give one sentence a line "
        "(blank lines at the end are ignored)\n"
    )


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf \r\n"])
def test_predict_file_without_text_says_so(project, capsys, tmp_path, monkeypatch, content):
    path = tmp_path / "sentences.txt"
    path.write_bytes(content)
    assert _predict(capsys, "--file", str(path)) == (
        2,
        "",
        f"lora-sst2: error: --file {path} has no text: expected one sentence a line\n",
    )
    _stdin(monkeypatch, content)
    assert _predict(capsys, "-")[2] == (
        "lora-sst2: error: standard input has no text: expected one sentence a line\n"
    )


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


def test_export_merged_tokenizer_cuts_long_input_as_predict_does(project, capsys, tmp_path):
    from transformers import pipeline

    out = tmp_path / "merged"
    assert cli.main(["export", "--merged", str(out)]) == 0
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    adapter = json.loads((project / "models/adapter.json").read_text())
    assert tokenizer_config["model_max_length"] == adapter["max_length"] == 32
    long = "a gorgeous , witty film but a dull , boring mess " * 100  # 1,000 words
    assert _predict(capsys, "--json", long)[2] == "note: 1 input(s) truncated to 32 tokens\n"
    ours = json.loads(_predict(capsys, "--json", long)[1])
    classify = pipeline("text-classification", model=str(out), device="cpu")
    (theirs,) = classify([long], truncation=True)
    assert theirs["label"] == ours["label"]
    assert abs(theirs["score"] - ours["score"]) <= 1e-5


def test_info_describes_adapter_and_metrics(project, capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert fields["r"] == "4" and fields["alpha"] == "16.0"
    assert fields["targets"] == "['query', 'value']"
    assert int(fields["adapter_bytes"]) == (project / "models/adapter.safetensors").stat().st_size
    assert "test.accuracy" in fields


def _sizes(project):
    from lora_core.inject import count_parameters

    model, _ = load_trained(project / "models", project / "models/base")
    trainable, total = count_parameters(model)
    return trainable, total, (project / "models/adapter.safetensors").stat().st_size


def test_info_aligns_values_two_spaces_after_the_longest_key(project, capsys):
    status, out, err = _run(capsys, "info")
    assert (status, err) == (0, "")
    scores = json.loads((project / "metrics/eval.json").read_text())
    keys = [f"{split}.{key}" for split in scores for key in scores[split]]
    assert max(keys, key=len) == "test.accuracy_ci95_high"  # 23 characters: values at 25
    trainable, total, size = _sizes(project)
    assert out.splitlines() == [
        "base_model               sentence-transformers/all-MiniLM-L6-v2",
        "mode                     lora",
        "r                        4",
        "alpha                    16.0",
        "targets                  ['query', 'value']",
        "dropout                  0.1",
        "dropout_mode             token",
        "rslora                   False",
        f"trainable_params         {trainable}",
        f"total_params             {total}",
        f"adapter_bytes            {size}",
        *(f"{key:<23}  {scores[key.split('.')[0]][key.split('.', 1)[1]]}" for key in keys),
    ]
    assert f"test.accuracy_ci95_high  {scores['test']['accuracy_ci95_high']}" in out
    assert f"val.accuracy             {scores['val']['accuracy']}" in out


def test_info_of_another_adapter_says_the_scores_are_not_its(project, capsys, tmp_path):
    out = tmp_path / "peft"
    assert _run(capsys, "export", "--peft", str(out))[0] == 0
    trainable, total, _ = _sizes(project)
    size = (out / "adapter_model.safetensors").stat().st_size
    assert _run(capsys, "info", "--adapter", str(out)) == (
        0,
        "\n".join(
            [
                "base_model        sentence-transformers/all-MiniLM-L6-v2",
                "mode              lora",
                "r                 4",
                "alpha             16.0",
                "targets           ['query', 'value']",
                "dropout           0.1",
                "dropout_mode      element",
                "rslora            False",
                f"trainable_params  {trainable}",
                f"total_params      {total}",
                f"adapter_bytes     {size}",
                "metrics           not shown: the scores in metrics/ belong to the project's "
                f"models/ adapter, not to {out}/",
            ]
        )
        + "\n",
        "",
    )
    # --metrics says whose scores they are: shown as asked
    _, shown, _ = _run(capsys, "info", "--adapter", str(out), "--metrics", "metrics")
    assert "test.accuracy" in shown and "not shown" not in shown
    # the project's own adapter, however it is typed, has its scores
    _, typed, _ = _run(capsys, "info", "--adapter", "models/")
    assert typed == _run(capsys, "info")[1] and "test.accuracy " in typed


TEXTS = ["a gorgeous , witty film", "a mess", "good film"]


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_predict_and_info_from_a_subfolder_use_the_projects_files(project, capsys, monkeypatch):
    at_root = _predict(capsys, "--json", *TEXTS), _run(capsys, "info")
    assert at_root[0][0] == at_root[1][0] == 0
    monkeypatch.chdir(project / "metrics")
    assert (_predict(capsys, "--json", *TEXTS), _run(capsys, "info")) == at_root
    # a path the user types is the user's: ../models is the project's adapter again
    assert _run(capsys, "info", "--adapter", "../models") == at_root[1]
    assert _predict(capsys, "--adapter", "models", "good") == (
        2,
        "",
        "lora-sst2: error: no adapter in models/ (adapter.safetensors and adapter.json): "
        "run `dvc repro` to train one\n",
    )


def test_predict_file_from_a_subfolder_is_read_there(built_project, tmp_path, monkeypatch, capsys):
    copy = work_copy(built_project, tmp_path, monkeypatch)
    (copy / "notes").mkdir()
    (copy / "notes/sentences.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    at_root = _predict(capsys, "--json", *TEXTS)
    monkeypatch.chdir(copy / "notes")
    assert _predict(capsys, "--json", "--file", "sentences.txt") == at_root
    (copy / "models/adapter.safetensors").unlink()  # the default names the root's models/
    assert _predict(capsys, "good")[2] == (
        "lora-sst2: error: no adapter in ../models/ (adapter.safetensors and adapter.json): "
        "run `dvc repro` to train one\n"
    )


def test_outside_the_project_adapter_and_params_find_its_base_model(
    project, capsys, monkeypatch, tmp_path
):
    at_root = _predict(capsys, "--json", *TEXTS), _run(capsys, "info")
    monkeypatch.chdir(tmp_path)
    given = ("--adapter", str(project / "models"), "--params", str(project / "params.yaml"))
    assert _predict(capsys, "--json", *given, *TEXTS) == at_root[0]
    assert _predict(capsys, "--json", *given[:2], *TEXTS) == at_root[0]
    assert _run(capsys, "info", *given[:2]) == at_root[1]  # the project's models/: its scores


@pytest.mark.parametrize(
    "argv", [["predict", "good"], ["info"], ["export", "--merged", "out"]], ids=lambda a: a[0]
)
def test_outside_any_project_without_adapter_is_one_line(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, *argv) == (
        2,
        "",
        f"lora-sst2: error: no lora-sst2 project (dvc.yaml) was found in {tmp_path} or any "
        "folder above it: run from inside the project or give --adapter\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_predict_refuses_a_params_file_it_cannot_find(project, capsys):
    assert _predict(capsys, "--params", "nope.yaml", "good") == (
        2,
        "",
        "lora-sst2: error: params file not found: nope.yaml\n",
    )
