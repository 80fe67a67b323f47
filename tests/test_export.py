"""`lora-sst2 export`: the merged model matches ours and names its classes, PEFT's folder
keeps any number of classes, and neither replaces what the user or the pipeline owns."""

import json
import os
import subprocess

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lora_core.adapter import load_trained
from lora_core.adapter_config import AdapterConfig
from lora_core.commands import cli, export
from lora_core.config import Params
from lora_core.peft import EXPORT_MARKER
from lora_core.pretrained import quiet_transformers
from lora_core.tokens import Task
from tests.conftest import snapshot, work_copy
from tests.test_infer import (
    BASE,
    PAIR_COLUMNS,
    PAIR_LABELS,
    PAIRS,
    direct_pair_probabilities,
    pair_adapter,
)


@pytest.fixture
def project(built_project, tmp_path, monkeypatch):
    return work_copy(built_project, tmp_path, monkeypatch)


def _export(capsys, *args):
    code = cli.main(["export", "--merged", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (".", ". is the working directory or a folder above it: refusing to replace it"),
        ("..", ".. is the working directory or a folder above it: refusing to replace it"),
        ("models", "export --merged models: that is (inside) a folder the pipeline owns"),
        ("data", "export --merged data: that is (inside) a folder the pipeline owns"),
        ("metrics", "export --merged metrics: that is (inside) a folder the pipeline owns"),
        ("models/merged", "export --merged models/merged: that is (inside) a folder the pipel"),
        (".git", "export --merged .git: that is (inside) a folder the pipeline owns"),
    ],
)
def test_export_refuses_project_and_pipeline_folders(project, capsys, target, message):
    before = snapshot(project.parent)
    code, out, err = _export(capsys, target)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"lora-sst2: error: {message}")
    assert snapshot(project.parent) == before


def test_export_refuses_a_folder_with_user_files_unless_forced(project, capsys, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my own notes\n")
    code, _, err = _export(capsys, str(target))
    assert code == 2
    assert err == (
        f"lora-sst2: error: export --merged {target}: the folder is not empty and holds no "
        "earlier export; choose a new folder, or add --force to write beside its files\n"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "my own notes\n"

    assert _export(capsys, str(target), "--force")[0] == 0  # beside the notes, never over them
    assert (target / "notes.txt").read_text() == "my own notes\n"
    marker = json.loads((target / EXPORT_MARKER).read_text())
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["notes.txt", EXPORT_MARKER, *marker["files"]]
    )
    assert "config.json" in marker["files"] and "notes.txt" not in marker["files"]


def test_export_force_refuses_a_name_the_users_file_holds(project, capsys, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "config.json").write_text("my config\n")
    code, _, err = _export(capsys, str(target), "--force")
    assert code == 2
    assert err == (
        f"lora-sst2: error: export --merged {target}: {target}/config.json is not from an "
        "earlier export; move it, or choose a new folder\n"
    )
    assert [p.name for p in target.iterdir()] == ["config.json"]  # nothing moved, no temp
    assert (target / "config.json").read_text() == "my config\n"


def test_a_new_export_keeps_a_users_file_and_removes_only_the_earlier_exports(
    project, capsys, tmp_path
):
    target = tmp_path / "exported"
    assert _export(capsys, str(target))[0] == 0
    merged = json.loads((target / EXPORT_MARKER).read_text())["files"]
    (target / "README.md").write_text("my model card\n")  # added by the user since
    assert cli.main(["export", "--peft", str(target)]) == 0
    capsys.readouterr()
    marker = json.loads((target / EXPORT_MARKER).read_text())
    assert marker["files"] == ["adapter_config.json", "adapter_model.safetensors"]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["README.md", EXPORT_MARKER, *marker["files"]]
    )  # the merged export's files are gone: it listed them
    assert (target / "README.md").read_text() == "my model card\n"
    assert "model.safetensors" in merged


def test_export_force_refuses_when_git_cannot_answer(project, capsys, tmp_path, monkeypatch):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my own notes\n")
    said = "fatal: detected dubious ownership in repository at '/x'\nTo add an exception ...\n"
    failed = subprocess.CompletedProcess([], 128, "", said)
    monkeypatch.setattr(export, "run", lambda cmd, shown: failed)
    code, _, err = _export(capsys, str(target), "--force")
    assert code == 2
    assert err == (
        f"lora-sst2: error: export --merged {target}: git cannot say whether it tracks files "
        "there (fatal: detected dubious ownership in repository at '/x')\n"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_export_force_never_replaces_files_git_tracks(project, capsys):
    before = snapshot(project)
    code, _, err = _export(capsys, "stages", "--force")
    assert code == 2
    assert (
        err
        == "lora-sst2: error: export --merged stages: git tracks files there; not even --force\n"
    )
    assert snapshot(project) == before


def test_export_refuses_a_file(project, capsys, tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"user data")
    code, _, err = _export(capsys, str(target), "--force")
    assert code == 2 and "that is a file or a link, expected a folder" in err
    assert target.read_bytes() == b"user data"


def test_export_replaces_its_own_earlier_export(project, capsys, tmp_path):
    target = tmp_path / "exported"
    assert _export(capsys, str(target))[0] == 0
    first = snapshot(target)
    assert EXPORT_MARKER in first
    assert _export(capsys, str(target))[0] == 0  # the marker says the folder is ours
    assert snapshot(target) == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left over


def test_export_files_have_plain_write_modes(project, capsys, tmp_path):
    plain_file, plain_dir = tmp_path / "plain.txt", tmp_path / "plain"
    with open(plain_file, "w") as f:
        f.write("x")
    plain_dir.mkdir()
    target = tmp_path / "exported"
    assert _export(capsys, str(target))[0] == 0
    modes = {p.name: os.stat(p).st_mode & 0o777 for p in target.iterdir()}
    assert "model.safetensors" in modes  # safetensors itself writes 0600
    assert modes == dict.fromkeys(modes, os.stat(plain_file).st_mode & 0o777)
    assert os.stat(target).st_mode & 0o777 == os.stat(plain_dir).st_mode & 0o777


def test_export_from_a_subfolder_writes_where_the_user_is(project, capsys, monkeypatch):
    (project / "notes").mkdir()
    monkeypatch.chdir(project / "notes")
    assert _export(capsys, "out") == (
        0,
        "merged model written to out/ (load it with AutoModelForSequenceClassification)\n",
        "",
    )
    assert (project / "notes/out/config.json").is_file()
    assert not (project / "out").exists()
    code, out, err = _export(capsys, ".", "--force")
    assert (code, out) == (2, "")
    assert err == (
        "lora-sst2: error: . is the working directory or a folder above it: refusing to "
        "replace it; choose a new folder\n"
    )
    monkeypatch.chdir(project / "metrics")
    assert _export(capsys, ".")[2] == (
        "lora-sst2: error: export --merged .: that is (inside) a folder the pipeline owns; "
        "choose a new folder outside data/, models/ and metrics/, e.g. exported/\n"
    )
    assert _export(capsys, "../exported")[0] == 0
    assert (project / "exported/config.json").is_file()


def test_export_from_outside_with_adapter_guards_its_project(
    project, capsys, monkeypatch, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    adapter = ("--adapter", str(project / "models"))
    before = snapshot(project)
    target = project / "data/merged"
    assert _export(capsys, str(target), *adapter)[2] == (
        f"lora-sst2: error: export --merged {target}: that is (inside) a folder the pipeline "
        "owns; choose a new folder outside data/, models/ and metrics/, e.g. exported/\n"
    )
    assert _export(capsys, "merged", *adapter)[0] == 0
    assert (outside / "merged/model.safetensors").is_file()
    assert snapshot(project) == before


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _predict(capsys, *args):
    return _run(capsys, "predict", *args)


@pytest.mark.trained
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


@pytest.mark.trained
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


PAIR_MARKER = {
    "base_model": BASE,
    "max_length": 32,
    "id2label": {"0": "entailment", "1": "neutral", "2": "contradiction"},
    "text_columns": ["sentence1", "sentence2"],
}


def _task(config):
    return config.labels, config.text_columns, config.max_length


def _pair_batch(tokenizer, max_length=None):
    """PAIRS as the tokenizer encodes pairs, cut at ``max_length`` (None: model_max_length)."""
    first, second = (list(texts) for texts in zip(*PAIRS))
    return tokenizer(
        first, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )


@pytest.mark.trained
def test_export_merged_config_names_a_3_class_adapters_classes(project, capsys, tmp_path):
    adapter = pair_adapter(tmp_path / "pairs", project / "models/base")
    out = tmp_path / "merged"
    assert _run(capsys, "export", "--merged", str(out), "--adapter", str(adapter))[0] == 0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == PAIR_MARKER["id2label"]
    assert config["label2id"] == {"entailment": 0, "neutral": 1, "contradiction": 2}
    marker = json.loads((out / EXPORT_MARKER).read_text())
    assert marker == {
        "made_by": "lora-sst2 export --merged",
        **PAIR_MARKER,
        "files": ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
    }
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    batch = _pair_batch(AutoTokenizer.from_pretrained(out))  # cut at 32: model_max_length
    with torch.no_grad():
        probs = torch.softmax(plain(**batch).logits, dim=-1).numpy()
    expected = direct_pair_probabilities(adapter, project / "models/base", PAIRS)
    torch.testing.assert_close(probs, expected, atol=1e-6, rtol=0)


@pytest.mark.trained
def test_export_peft_keeps_3_classes_and_their_names(project, capsys, tmp_path):
    base_dir = project / "models/base"
    adapter, out = pair_adapter(tmp_path / "pairs", base_dir), tmp_path / "peft"
    assert _run(capsys, "export", "--peft", str(out), "--adapter", str(adapter))[0] == 0
    marker = json.loads((out / EXPORT_MARKER).read_text())
    assert marker == {
        "made_by": "lora-sst2 export --peft",
        **PAIR_MARKER,
        "files": ["adapter_config.json", "adapter_model.safetensors"],
    }
    tensors = load_file(out / "adapter_model.safetensors")
    assert tensors["base_model.model.classifier.weight"].shape == (3, 32)
    # PEFT itself: a base with as many labels as the marker names, then the adapter
    with quiet_transformers():  # no bar left to print in a later command's stderr
        base = AutoModelForSequenceClassification.from_pretrained(base_dir / BASE, num_labels=3)
        peft = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        logits = peft(**_pair_batch(AutoTokenizer.from_pretrained(base_dir / BASE), 32)).logits
    expected = direct_pair_probabilities(adapter, base_dir, PAIRS)
    torch.testing.assert_close(torch.softmax(logits, -1).numpy(), expected, atol=1e-6, rtol=0)
    # read back: the same classes, text columns and max_length as the adapter it came from
    (_, source), (_, back) = load_trained(adapter, base_dir), load_trained(out, base_dir)
    assert _task(back) == _task(source) == (PAIR_LABELS, PAIR_COLUMNS, 32)
    path = tmp_path / "pairs.tsv"
    rows = [f"{a}\t{b}" for a, b in PAIRS]
    path.write_text("\n".join(["sentence1\tsentence2", *rows]) + "\n", encoding="utf-8")
    ours = _predict(capsys, "--json", "--adapter", str(adapter), "--file", str(path))
    assert _predict(capsys, "--json", "--adapter", str(out), "--file", str(path)) == ours


def test_a_peft_folder_without_names_reads_as_transformers_names_them(project, capsys, tmp_path):
    base_dir = project / "models/base"
    adapter, out = pair_adapter(tmp_path / "pairs", base_dir), tmp_path / "peft"
    assert _run(capsys, "export", "--peft", str(out), "--adapter", str(adapter))[0] == 0
    marker = json.loads((out / EXPORT_MARKER).read_text())
    (out / EXPORT_MARKER).write_text(json.dumps({**marker, "id2label": {"0": "a", "1": "b"}}))
    assert _run(capsys, "info", "--adapter", str(out)) == (
        2,
        "",
        f"lora-sst2: error: {out / EXPORT_MARKER}: id2label names 2 classes, the classifier "
        "has 3\n",
    )
    # a value the marker gave that adapter.json's rules refuse is the marker's, not PEFT's
    (out / EXPORT_MARKER).write_text(
        json.dumps({**marker, "id2label": {"0": "a", "1": "a", "2": "b"}})
    )
    assert _run(capsys, "info", "--adapter", str(out)) == (
        2,
        "",
        f"lora-sst2: error: {out / EXPORT_MARKER}: labels = ('a', 'a', 'b') is not allowed: "
        "must list two or more distinct class names\n",
    )
    (out / EXPORT_MARKER).write_text(json.dumps({**marker, "max_length": 1}))
    code, out_text, err = _run(capsys, "info", "--adapter", str(out))
    assert (code, out_text) == (2, "")
    assert err.startswith(f"lora-sst2: error: {out / EXPORT_MARKER}: max_length = 1 is not allowed")
    (out / EXPORT_MARKER).unlink()  # PEFT's two files alone, as PEFT itself saves them
    generic = (("LABEL_0", "LABEL_1", "LABEL_2"), ("sentence",), 128)
    assert _task(load_trained(out, base_dir)[1]) == generic


def test_an_export_of_a_head_tail_adapter_says_a_tokenizer_cuts_the_head_only():
    def note(truncation: str) -> str:
        task = Task(("negative", "positive"), ("sentence",), truncation)
        return export.cut_note(
            export.export_marker("--merged", AdapterConfig.from_params(Params(), task))
        )

    assert note("head") == ""
    assert note("head+tail") == (
        "note: this adapter read long texts head+tail (model.truncation); a Hugging Face "
        "tokenizer keeps the first 128 tokens, so past that length its scores differ from "
        "predict's: cut such texts the same way first"
    )
