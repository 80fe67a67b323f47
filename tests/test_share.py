"""Sharing through git and a DVC remote: a clone pulls, predicts without training, and an
experiment made in one clone comes home to another (a bare repository as origin, a folder
as the DVC remote)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from lora_core.readers import sha256
from tests.conftest import clone, run

MIRRORS = ("data/raw/sst2", "models/base")  # git-ignored, not DVC outputs: filled by hand
LORA_SST2 = [sys.executable, "-m", "lora_core.commands.cli"]
ARTIFACTS = {"adapter": "adapter.safetensors", "adapter-config": "adapter.json"}
SENTENCES = ["a good and witty film", "a dull , tired mess"]


def _predict(project: Path) -> str:
    return run([*LORA_SST2, "predict", *SENTENCES], project).stdout


def _fill_mirrors(src: Path, dest: Path) -> None:
    for mirror in MIRRORS:
        shutil.copytree(src / mirror, dest / mirror)


def test_clone_pulls_predicts_without_training_and_experiments_travel(committed, tmp_path):
    a = tmp_path / "a"
    shutil.copytree(committed, a, symlinks=True)  # reproduced and committed
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], a)
    run(["dvc", "remote", "add", "-q", "-d", "storage", str(storage)], a)
    run(["git", "commit", "-qam", "a DVC remote"], a)
    run(["dvc", "push", "-q"], a)
    run(["git", "push", "-q", "origin", "main"], a)

    # The adapter as DVC artifacts (dvc.yaml): a version tag in git, then `dvc artifacts get`
    # from the bare origin and its DVC remote, with no clone and no training.
    for name in ARTIFACTS:
        run(["git", "tag", "-a", f"{name}@v1.0.0", "-m", f"{name} v1.0.0"], a)
    run(["git", "push", "-q", "origin", "--tags"], a)
    got = tmp_path / "got"
    got.mkdir()
    for name, file in ARTIFACTS.items():
        get = ["dvc", "artifacts", "get", str(origin), name, "-o", str(got / file)]
        assert run(get, tmp_path).stdout == f"Downloaded 1 file(s) to '{got / file}'\n"
        assert sha256(got / file) == sha256(a / "models" / file)

    # A clone that pulled nothing: the CI checks read git alone.
    bare = clone(origin, tmp_path / "bare")
    assert run([*LORA_SST2, "check-fresh"], bare).returncode == 0
    assert not (bare / "models/adapter.safetensors").exists()

    # Clone B: dvc pull, then predict, with no training.
    b = clone(origin, tmp_path / "b")
    run(["dvc", "pull", "-q"], b)
    _fill_mirrors(a, b)
    assert sha256(b / "models/adapter.safetensors") == sha256(a / "models/adapter.safetensors")
    assert _predict(b) == _predict(a)
    status = json.loads(run(["dvc", "status", "--json"], b).stdout)
    assert status == {"fetch": ["always changed"]}, status  # it checks params every run
    repro = run(["dvc", "repro"], b).stdout
    assert repro.count("Running stage") == repro.count("Running stage 'fetch'") == 1, repro
    assert repro.count("didn't change, skipping") == 5, repro  # prepare ... baseline

    # An experiment made in B comes home to A through git and the DVC remote.
    run(["dvc", "exp", "run", "-q", "-n", "rank8", "-S", "lora.r=8"], b)
    adapter_b = sha256(b / "models/adapter.safetensors")
    run(["dvc", "exp", "push", "-q", "origin", "rank8"], b)
    run(["dvc", "exp", "pull", "-q", "origin", "rank8"], a)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], a).stdout)
    names = [e.get("name") for commit in shown for e in commit.get("experiments") or []]
    assert names == ["rank8"], names
    report = run([*LORA_SST2, "report", "--png", str(tmp_path / "exp.png")], a).stdout
    assert "lora r=8" in report, report
    run(["dvc", "exp", "apply", "-q", "rank8"], a)
    assert sha256(a / "models/adapter.safetensors") == adapter_b
    assert json.loads((a / "models/adapter.json").read_text())["lora"]["r"] == 8
