"""`lora-sst2 export --merged`: it never replaces what the user or the pipeline owns."""

import os

import pytest

from lora_core.commands import cli
from lora_core.commands.export import EXPORT_MARKER
from tests.conftest import snapshot, work_copy


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
        "earlier export; choose a new folder, or add --force to replace it\n"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "my own notes\n"

    assert _export(capsys, str(target), "--force")[0] == 0
    assert not (target / "notes.txt").exists() and (target / "config.json").is_file()


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
