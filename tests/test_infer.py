"""`lora-sst2 predict` and `info` on the tiny reproduced project, and on a hand-made
3-class sentence-pair adapter of its base model."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from lora_core.adapter import load_trained, write_adapter
from lora_core.adapter_config import AdapterConfig
from lora_core.commands import cli
from lora_core.commands.predict import json_line, plain_line
from lora_core.config import LoraConfig, ModelConfig
from lora_core.errors import LoraSst2Error
from lora_core.inject import lora_state_dict
from lora_core.model import build_classifier
from lora_core.predictor import Predictor, prediction
from tests.conftest import set_params, work_copy

BASE = "sentence-transformers/all-MiniLM-L6-v2"
PAIR_LABELS = ("entailment", "neutral", "contradiction")
PAIR_COLUMNS = ("sentence1", "sentence2")


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
    from lora_core.inference import load_for_inference
    from lora_core.metrics import softmax
    from lora_core.pretrained import load_tokenizer
    from lora_core.tokens import tokenize

    inference = load_for_inference(project / "models", load_params(project / "params.yaml"))
    tokenizer = load_tokenizer(inference.config.base_model, project / "models/base")
    split, _ = tokenize(tokenizer, texts, [0] * len(texts), inference.config.max_length)
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


@pytest.mark.trained
def test_predict_reproduces_evaluate_test_accuracy_exactly(project, capsys):
    lines = (project / "data/prepared/test.jsonl").read_text(encoding="utf-8").splitlines()
    test = [json.loads(line) for line in lines]
    path = project / "test_sentences.txt"
    path.write_text("\n".join(row["text"] for row in test) + "\n", encoding="utf-8")
    _, out, _ = _predict(capsys, "--json", "--file", str(path))
    labels = [json.loads(line)["label"] for line in out.splitlines()]
    accuracy = sum(p == row["label"] for p, row in zip(labels, test)) / len(test)
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


def test_info_describes_adapter_and_metrics(project, capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert fields["labels"] == "['negative', 'positive']"
    assert fields["text_columns"] == "['sentence']"
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
    expected = {}
    for split, values in scores.items():
        for key, value in values.items():
            if key == "per_class":  # a class a line: "precision 0.8 recall 0.9 f1 0.85 support 20"
                for name, v in value.items():
                    line = f"precision {v['precision']} recall {v['recall']} f1 {v['f1']}"
                    expected[f"{split}.{key}.{name}"] = f"{line} support {v['support']}"
            else:
                expected[f"{split}.{key}"] = value
    assert max(map(len, expected)) == len("test.accuracy_ci95_high")  # 23: values at 25
    trainable, total, size = _sizes(project)
    assert out.splitlines() == [
        "base_model               sentence-transformers/all-MiniLM-L6-v2",
        "labels                   ['negative', 'positive']",
        "text_columns             ['sentence']",
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
        *(f"{key:<23}  {value}" for key, value in expected.items()),
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
                "labels            ['negative', 'positive']",
                "text_columns      ['sentence']",
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


def pair_adapter(folder: Path, base_dir: Path) -> Path:
    """A 3-class sentence-pair adapter of the tiny base: its trainable tensors moved off
    their init, as if trained, so the classes differ from row to row."""
    lora = LoraConfig(r=3, alpha=5.0, targets=("query", "value"))
    model_cfg = ModelConfig(name=BASE)
    model = build_classifier(model_cfg, lora, seed=1, base_dir=base_dir, labels=PAIR_LABELS)
    torch.manual_seed(4)  # a draw whose four PAIRS are not all one class
    state = {k: v + torch.randn_like(v) for k, v in lora_state_dict(model).items()}
    folder.mkdir()
    config = AdapterConfig(BASE, 32, "lora", False, lora, PAIR_LABELS, PAIR_COLUMNS)
    write_adapter(folder / "adapter.safetensors", folder / "adapter.json", state, config)
    return folder


# the last pair is 40 words: cut to 32 tokens, longest text first, as the tokenizer cuts pairs
PAIRS = [
    ("a gorgeous , witty film", "the plot is dull"),
    ("good", "bad"),
    ("fun and smart", "a boring mess"),
    ("good " * 30, "dull " * 10),
]


def direct_pair_probabilities(adapter: Path, base_dir: Path, pairs) -> np.ndarray:
    """Softmax of the unmerged model on the tokenizer's own pair encoding, cut at 32."""
    model, _ = load_trained(adapter, base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir / BASE)
    first, second = zip(*pairs)
    batch = tokenizer(
        list(first), list(second), padding=True, truncation=True, max_length=32,
        return_tensors="pt",
    )  # fmt: skip
    with torch.no_grad():
        return torch.softmax(model.eval()(**batch).logits, dim=-1).numpy()


@pytest.fixture
def pairs(project, tmp_path):
    """The pair adapter, and PAIRS as a TSV with a header and a label column it ignores."""
    adapter = pair_adapter(tmp_path / "pair-adapter", project / "models/base")
    path = tmp_path / "dev.tsv"
    rows = [f"{a}\t{b}\tneutral" for a, b in PAIRS]
    path.write_text("\n".join(["sentence1\tsentence2\tlabel", *rows]) + "\n", encoding="utf-8")
    return adapter, path


@pytest.mark.trained
def test_predict_scores_sentence_pairs_of_a_tsv_as_the_model_does(project, capsys, pairs):
    adapter, path = pairs
    status, out, err = _predict(capsys, "--json", "--adapter", str(adapter), "--file", str(path))
    assert (status, err) == (0, "note: 1 input(s) truncated to 32 tokens\n")
    expected = direct_pair_probabilities(adapter, project / "models/base", PAIRS)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["text"], r["text_pair"]) for r in rows] == PAIRS
    assert [r["label"] for r in rows] == [PAIR_LABELS[i] for i in expected.argmax(axis=1)]
    assert len({r["label"] for r in rows}) > 1  # the classes differ: the check has teeth
    for row, probs in zip(rows, expected):
        assert list(row) == ["text", "text_pair", "label", "score", "probabilities"]
        assert row["probabilities"] == pytest.approx(dict(zip(PAIR_LABELS, probs)), abs=1e-6)
    plain = _predict(capsys, "--adapter", str(adapter), "--file", str(path))[1]
    assert plain.splitlines() == [
        f"{r['label']}\t{r['score']:.4f}\t{r['text']}\t{r['text_pair']}" for r in rows
    ]


def test_predict_reads_pairs_from_csv_and_jsonl_by_name_as_from_tsv(project, capsys, pairs):
    adapter, tsv = pairs
    at = ("--json", "--adapter", str(adapter), "--file")
    csv, jsonl = tsv.with_suffix(".csv"), tsv.with_suffix(".jsonl")
    quoted = [f'"{b}",x,"{a}"' for a, b in PAIRS]  # other order, other columns: by name
    csv.write_text("\r\n".join(["sentence2,id,sentence1", *quoted]) + "\r\n", encoding="utf-8")
    objects = [json.dumps({"sentence2": b, "sentence1": a}) for a, b in PAIRS]
    jsonl.write_text("\n\n".join(objects) + "\n", encoding="utf-8")
    from_tsv = _predict(capsys, *at, str(tsv))
    assert _predict(capsys, *at, str(csv)) == _predict(capsys, *at, str(jsonl)) == from_tsv


def test_predict_one_text_adapter_reads_its_column_of_a_csv(project, capsys, tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("label,sentence\n" + "".join(f'1,"{t}"\n' for t in TEXTS), encoding="utf-8")
    assert _predict(capsys, "--file", str(path)) == _predict(capsys, *TEXTS)


def _refusal(capsys, monkeypatch, adapter, *args) -> str:
    _stdin(monkeypatch, b"good\tbad\n")
    status, out, err = _predict(capsys, "--adapter", str(adapter), *args)
    assert (status, out, err.count("\n")) == (2, "", 1)
    return err.removeprefix("lora-sst2: error: ").rstrip("\n")


def test_predict_pair_adapter_refuses_single_texts_in_one_line(project, capsys, monkeypatch, pairs):
    adapter, path = pairs
    text = path.with_suffix(".txt")
    text.write_text("good\tbad\n", encoding="utf-8")
    tail = (
        "and this adapter scores sentence pairs: give them with --file, a .csv, .tsv, .jsonl "
        "or .parquet file with columns 'sentence1' and 'sentence2'"
    )
    assert _refusal(capsys, monkeypatch, adapter, "good", "bad") == (
        f"sentence arguments are single texts, {tail}"
    )
    assert _refusal(capsys, monkeypatch, adapter, "--file", str(text)) == (
        f"--file {text} is not .csv, .tsv, .jsonl or .parquet, so it is read as one text a "
        f"line, {tail}"
    )
    assert _refusal(capsys, monkeypatch, adapter, "-") == (
        f"standard input is read as one text a line, {tail}"
    )
    predictor = Predictor(adapter, base_dir=project / "models/base")  # the library: same rule
    with pytest.raises(LoraSst2Error) as info:
        predictor.probabilities(["good", "bad"])
    assert str(info.value) == "this adapter scores sentence pairs (sentence1, sentence2)"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "in.tsv",
            "sentence1\tlabel\ngood\tx\n",
            "{path}: no column 'sentence2' (it has: label, sentence1); "
            "this adapter reads sentence1, sentence2",
        ),
        (
            "in.tsv",
            "sentence1\tsentence2\ngood\tbad\nfun\t  \n",
            "{path} row 3: sentence2 is '  ': every row needs some text",
        ),
        (
            "in.csv",
            'sentence1,sentence2\ngood,bad\n"a\nb",fun\n\nfun,bad\n',
            "{path} row 4: sentence1 is '': every row needs some text",
        ),
        ("in.csv", "sentence1,sentence2\n", "{path} has a header but no rows"),
        (
            "in.tsv",
            "sentence1\tsentence2\ngood\tbad\nfun\tbad\tdull\n",
            "{path} is neither a plain TSV (line 3 has 2 tabs where the header has 1) "
            "nor a quoted one (row 3: 3 fields, the header has 2)",
        ),
        (
            "in.jsonl",
            '{"sentence1": "a", "sentence2": "b"}\n\n{"sentence1": "c"}\n',
            "{path} line 3: sentence2 is missing: every row needs some text",
        ),
        (
            "in.jsonl",
            '{"sentence1": "a", "sentence2": 7}\n',
            "{path} line 1: sentence2 is 7: every row needs some text",
        ),
        ("in.jsonl", "[1, 2]\n", "{path} line 1: expected a JSON object, got '[1, 2]'"),
    ],
    ids=["no column", "blank text", "csv row after a quoted newline", "header only",
         "extra field", "jsonl no key", "jsonl not text", "jsonl not an object"],
)  # fmt: skip
def test_predict_pair_file_errors_name_the_file_row_and_problem(
    project, capsys, monkeypatch, pairs, name, content, message
):
    path = pairs[1].parent / name
    path.write_text(content, encoding="utf-8")
    got = _refusal(capsys, monkeypatch, pairs[0], "--file", str(path))
    assert got == message.format(path=path)


def test_info_names_the_classes_and_text_columns_of_any_adapter(project, capsys, pairs):
    status, out, _ = _run(capsys, "info", "--adapter", str(pairs[0]))
    assert status == 0
    assert out.splitlines()[:4] == [
        "base_model        sentence-transformers/all-MiniLM-L6-v2",
        "labels            ['entailment', 'neutral', 'contradiction']",
        "text_columns      ['sentence1', 'sentence2']",
        "mode              lora",
    ]


def test_plain_output_keeps_one_prediction_a_line():
    row = {"text": "first line\nsecond\tcell\r\n", "label": "mixed", "score": 0.98765}
    assert plain_line(row) == "mixed\t0.9877\tfirst line\\nsecond\\tcell\\r\\n"
    pair = {**row, "text": "a", "text_pair": "b\nc"}
    assert plain_line(pair) == "mixed\t0.9877\ta\tb\\nc"


def test_predict_cuts_a_long_text_head_and_tail_as_the_adapter_was_tokenized(tmp_path):
    from dataclasses import astuple

    from lora_core.tokens import Task, tokenize
    from tests.tiny import NEGATIVE, POSITIVE, write_tiny_model

    base = tmp_path / "base"
    write_tiny_model(base / BASE)
    lora = LoraConfig(r=2, targets=("query", "value"))
    model = build_classifier(ModelConfig(name=BASE), lora, seed=1, base_dir=base)
    torch.manual_seed(4)
    state = {k: v + torch.randn_like(v) for k, v in lora_state_dict(model).items()}
    task = Task(("negative", "positive"), ("sentence",), "head+tail")
    config = AdapterConfig(BASE, 10, "lora", False, lora, *astuple(task))
    (tmp_path / "a").mkdir()
    write_adapter(tmp_path / "a/adapter.safetensors", tmp_path / "a/adapter.json", state, config)
    scorer = Predictor(tmp_path / "a", base_dir=base)
    text = " ".join(POSITIVE + NEGATIVE)  # 16 tokens: 2 of the head and 6 of the tail kept
    probs, truncated = scorer.probabilities([text, "good film"])
    split, _ = tokenize(scorer.tokenizer, [text, "good film"], [0, 0], 10, truncation="head+tail")
    assert split.ids[:10].tolist() == [2, 5, 6, 15, 16, 17, 18, 19, 20, 3]
    model, _ = load_trained(tmp_path / "a", base)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.tensor([split.ids[:10].tolist()])).logits, -1)
    assert truncated == 1
    torch.testing.assert_close(torch.from_numpy(probs[:1]).float(), expected, rtol=1e-5, atol=1e-6)
    head, _ = tokenize(scorer.tokenizer, [text], [0], 10)
    with torch.no_grad():
        cut_head = torch.softmax(model(torch.tensor([head.ids.tolist()])).logits, -1)
    assert not torch.allclose(cut_head, expected)  # the cut matters: the check has teeth
