"""Shared fixtures: a tiny, offline copy of the whole project in a temporary git repo."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from lora_core.commands.cli import main
from lora_core.config import Params
from tests.tiny import write_tiny_glue, write_tiny_model

# Tests never touch the network or send analytics.
os.environ.update(
    DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1"
)

# Ctrl-C's SIGINT as a terminal gives it, however pytest was started: `nohup`, a CI step or a
# batch shell starts it with SIGINT ignored, every child inherits that, and the tests that
# interrupt a child (a training stage, a pruned or orphaned trial) would wait in vain.
if threading.current_thread() is threading.main_thread():  # older xdist workers: not always
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dvc.yaml", ".gitignore", ".dvcignore", "stages", "lora_core")
# Training precision of every tiny project: fp32 unless the environment forces another, so no
# test's outcome depends on the CPU (`auto` is bf16 on a CPU with bf16, fp32 elsewhere), and
# `LORA_SST2_TEST_PRECISION=bf16 python -m pytest` runs the suite as a bf16 CPU would, on any
# CPU (bf16 autocast runs on AVX2 too, only slower). .ci/run does both.
PRECISION = os.environ.get("LORA_SST2_TEST_PRECISION", "fp32")
# The tiny project's params: the code's defaults with these changes. Never the project's own
# params.yaml, so that committing a tuned params.yaml (`dvc exp apply`) turns no test red.
TINY_PARAMS = {
    "data": {"split": "random", "labels": ["negative", "positive"]},  # no phrases; 0/1 named
    "train": {
        **{"epochs": 2, "batch_size": 16, "lr": 0.01, "device": "cpu", "bucket_chunk": 4},
        "precision": PRECISION,
    },
    "evaluate": {"batch_size": 64},
    "model": {"max_length": 32},
}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; fail the test with its output on error."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def set_params(project: Path, updates: dict) -> None:
    """Merge ``{section: {key: value}}`` into the project's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in updates.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def tiny_params() -> dict:
    """The tiny project's params.yaml as a mapping: code defaults updated by TINY_PARAMS."""
    params = Params().to_dict()
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    return params


def make_tiny_project(dest: Path) -> Path:
    """Copy the project's code into ``dest`` with tiny params, model and data, committed."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    text = yaml.safe_dump(tiny_params(), sort_keys=False)
    (dest / "params.yaml").write_text(text, encoding="utf-8")
    write_tiny_model(dest / "models/base/sentence-transformers/all-MiniLM-L6-v2")
    write_tiny_glue(dest / "data/raw/sst2")
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    run(["dvc", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny project"], dest)
    return dest


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A fresh tiny project (git + DVC, nothing reproduced yet)."""
    return make_tiny_project(tmp_path / "project")


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Path:
    """A tiny project after one `dvc repro` (shared: copy it before changing it); what that
    first repro printed is in ``repro.log`` beside it (``first_repro``)."""
    project = make_tiny_project(tmp_path_factory.mktemp("built") / "project")
    (project.parent / "repro.log").write_text(run(["dvc", "repro"], project).stdout)
    return project


def first_repro(built_project: Path) -> str:
    """What the shared project's first `dvc repro` printed."""
    return (built_project.parent / "repro.log").read_text()


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``root`` (.git included) by relative path, but ``skip``."""
    files = (f for f in sorted(root.rglob("*")) if f.is_file() and not f.is_symlink())
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if not str(f.relative_to(root)).startswith(skip)
    }


def work_copy(project: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of a shared project, as the working directory."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def lora(monkeypatch, capsys, project: Path, *argv: str) -> tuple[int, str, str]:
    """Run `lora-sst2 ARGV` in ``project``: exit status, stdout, stderr."""
    monkeypatch.chdir(project)
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="session")
def committed(built_project, tmp_path_factory) -> Path:
    """The reproduced tiny project with dvc.lock and metrics/ committed (shared: clone it)."""
    project = tmp_path_factory.mktemp("committed") / "project"
    shutil.copytree(built_project, project, symlinks=True)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "reproduced"], project)
    return project


def clone(project: Path, dest: Path) -> Path:
    """A fresh git clone: no DVC cache, no data/, no models/."""
    run(["git", "clone", "-q", str(project), str(dest)], project.parent)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    return dest


def set_metrics(project: Path, test_accuracy: float) -> None:
    """Overwrite test.accuracy in the project's metrics/eval.json."""
    path = project / "metrics/eval.json"
    metrics = json.loads(path.read_text())
    metrics["test"]["accuracy"] = test_accuracy
    path.write_text(json.dumps(metrics, indent=2) + "\n")
