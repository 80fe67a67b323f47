"""Staged and atomic writes: all outputs or none, never over a project, plain modes."""

import os

import pytest

from lora_core import files
from lora_core.errors import LoraSst2Error
from lora_core.files import atomic_dir, staged


def test_staged_outputs_appear_together_and_leave_no_temporary(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub/b.txt"
    with staged() as out:
        out.file(a).write_text("new a")
        out.file(b).write_text("new b")
        assert not a.exists() and not b.exists()  # nothing before the block ends
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.txt", "sub"]


def test_staged_commit_that_fails_midway_puts_every_output_back(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")
    real = os.replace

    def failing(src, dst):  # moving the new b in fails; putting the old b back works
        if str(dst) == str(b) and not str(src).endswith(".old.tmp"):
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(PermissionError) as info, staged() as out:
        out.file(a).write_text("new a")
        out.file(b).write_text("new b")
    assert info.value.filename == str(b)  # the output, not a temporary
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_staged_block_that_raises_writes_nothing(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("old")
    with pytest.raises(RuntimeError), staged() as out:
        out.file(a).write_text("half")
        raise RuntimeError("failed mid-way")
    assert a.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_staged_file_refuses_a_folder_in_its_place(tmp_path):
    (tmp_path / "eval.json").mkdir()
    (tmp_path / "eval.json/mine.txt").write_text("user's")
    with pytest.raises(IsADirectoryError), staged() as out:
        out.file(tmp_path / "eval.json")
    assert (tmp_path / "eval.json/mine.txt").read_text() == "user's"


def test_atomic_dir_swaps_a_folder_whole_with_plain_modes(tmp_path):
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "old.json").write_text("{}")
    with atomic_dir(folder) as tmp:
        (tmp / "new.json").write_text("[]")
    assert [p.name for p in folder.iterdir()] == ["new.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(folder / "new.json").st_mode & 0o777 == 0o666 & ~umask
    assert os.stat(folder).st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("marker", [".git", ".dvc", "dvc.yaml"])
def test_atomic_dir_never_replaces_a_project(tmp_path, marker):
    project = tmp_path / "project"
    project.mkdir()
    (project / marker).write_text("")
    refused = pytest.raises(LoraSst2Error, match=rf"holds a project \({marker}\)")
    with refused, atomic_dir(project):
        pass
    assert [p.name for p in project.iterdir()] == [marker]


def test_atomic_dir_never_replaces_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused = pytest.raises(LoraSst2Error, match="is the working directory or a folder above")
    with refused, atomic_dir(tmp_path.parent):
        pass
