"""A killed train stage resumes from its checkpoint and ends with the uninterrupted bytes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file, save_file

from lora_core.readers import sha256
from tests.conftest import run, set_params

ADAPTER = "models/adapter.safetensors"
STATE = "models/checkpoint/state.json"
CURVES = "metrics/train/plots/metrics"
STOP = Path(__file__).parent / "stop"  # its sitecustomize stops a run after a given step
TRAIN = [sys.executable, "-m", "stages.train", "--no-progress"]
# The tiny project: 180 examples, batch 16, chunks of 4 batches -> 12 steps an epoch, 2 epochs.
EVERY = {"train": {"checkpoint_every": 4}}  # checkpoints at steps 4, 8, 12 (epoch end), 16...
# Kills a run (runpy, as `python -m stages.train`) inside its 4th checkpoint write (step 16),
# after half its tensors file is written.
KILL_IN_WRITE = """
import os, runpy, signal, sys
from lora_core import checkpoint
calls = []
def save_file(tensors, path):
    calls.append(path)
    if len(calls) == 4:
        open(path, "wb").write(b"half a file")
        os.kill(os.getpid(), signal.SIGKILL)
    real(tensors, path)
real, checkpoint.save_file = checkpoint.save_file, save_file
sys.argv = ["stages.train", "--no-progress"]
runpy.run_module("stages.train", run_name="__main__")
"""


def _copy(project: Path, tmp_path: Path, params: dict) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    set_params(copy, params)
    return copy


def _step(project: Path) -> int | None:
    try:
        return json.loads((project / STATE).read_text()).get("step")
    except (OSError, ValueError):
        return None


def _kill_after(project: Path, cmd: list[str], steps: int, sig: int) -> None:
    """Run ``cmd`` in its own process group until its train process stops itself after its
    ``steps``-th optimizer step (tests/stop/sitecustomize.py); then send ``sig`` to the whole
    tree, and SIGCONT so that a stopped process receives it. Output goes to a file beside the
    project, so that no full pipe can hold the run up."""
    path = os.pathsep.join(filter(None, (str(STOP), os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": path, "LORA_SST2_TEST_STOP_AFTER": str(steps)}
    log = project.parent / f"{project.name}-killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=project, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not _stopped(_tree(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        # torchrun starts its workers in sessions of their own: signal the whole tree, as a
        # scheduler that ends a job does.
        tree = _tree(proc.pid)
        os.killpg(proc.pid, sig)
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)
                process.send_signal(signal.SIGCONT)
        proc.wait(timeout=120)
        psutil.wait_procs(tree, timeout=60)
    finally:  # never leave a stopped process behind, whatever failed above
        for process in _tree(proc.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _stopped(processes: list[psutil.Process]) -> bool:
    """Whether one of ``processes`` is stopped; one that has ended meanwhile (dvc's short
    helpers come and go) is not."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() == psutil.STATUS_STOPPED:
                return True
    return False


def _tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and its descendants, while it lives."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _resumed(output: str) -> list[str]:
    return [line for line in output.splitlines() if "checkpoint" in line or "resum" in line]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_repro_killed_mid_epoch_2_resumes_to_the_uninterrupted_adapter(
    built_project, tmp_path, sig
):
    project = _copy(built_project, tmp_path, EVERY)
    _kill_after(project, ["dvc", "repro"], 18, sig)  # steps 17 and 18 are lost, and redone
    assert not (project / ADAPTER).exists()  # dvc repro removed it before the stage ran
    assert _step(project) == 16
    out = run(["dvc", "repro"], project).stdout
    assert "resuming from epoch 2, step 16" in out.splitlines()
    assert not [p for p in project.rglob(".*.tmp")]
    assert sha256(project / ADAPTER) == sha256(built_project / ADAPTER)
    for name in ("train/loss", "train/lr", "val/accuracy", "val/loss"):  # DVCLive's histories
        tsv = (project / CURVES / f"{name}.tsv").read_text()
        assert tsv == (built_project / CURVES / f"{name}.tsv").read_text(), name
        steps = [row.split("\t")[0] for row in tsv.splitlines()]
        assert steps == ["step", "12", "24"]  # a loss reading an epoch: none twice or missing
    assert json.loads((project / STATE).read_text()) == {"finished": True}


def test_a_kill_inside_the_checkpoint_write_resumes_from_the_one_before(built_project, tmp_path):
    project = _copy(built_project, tmp_path, EVERY)
    proc = subprocess.run([sys.executable, "-c", KILL_IN_WRITE], cwd=project, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert _step(project) == 12
    assert len(list((project / "models/checkpoint").glob(".tensors-000000016*.tmp"))) == 1
    out = run(TRAIN, project).stdout
    assert _resumed(out)[0] == "resuming from epoch 2, step 12"
    assert not [p for p in project.rglob(".*.tmp")]
    assert sha256(project / ADAPTER) == sha256(built_project / ADAPTER)


@pytest.fixture(scope="module")
def killed(built_project, tmp_path_factory) -> Path:
    """The built project after a direct train run SIGKILLed after step 18 (checkpoint: 16)."""
    project = _copy(built_project, tmp_path_factory.mktemp("killed"), EVERY)
    _kill_after(project, TRAIN, 18, signal.SIGKILL)
    return project


def _flip_a_label(project: Path) -> None:
    path = project / "data/tokenized/train.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    tensors["labels"][0] = 1 - tensors["labels"][0]
    save_file(tensors, path, metadata=metadata)


CHANGES = {
    "params": lambda p: set_params(p, {"train": {"lr": 0.02}}),
    "data": _flip_a_label,
    "code": lambda p: (p / "lora_core/layer.py").open("a").write("# an edit\n"),
    "damaged": lambda p: next((p / "models/checkpoint").glob("tensors-*")).write_bytes(b"x"),
}
LINES = {
    "params": "was made with other params",
    "data": "was made with other data",
    "code": "was made with other code",
    "damaged": "is damaged (its tensors file is missing or changed)",
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_checkpoint_that_does_not_fit_starts_fresh_with_one_line(killed, tmp_path, change):
    project = _copy(killed, tmp_path, {})
    CHANGES[change](project)
    out = run(TRAIN, project).stdout
    assert _resumed(out)[0] == f"checkpoint models/checkpoint {LINES[change]}: starting fresh"
    assert not any(line.startswith("resuming") for line in out.splitlines())
    assert json.loads((project / STATE).read_text()) == {"finished": True}
    if change in ("code", "damaged"):  # the same training, from the start: the same bytes
        assert sha256(project / ADAPTER) == sha256(killed / ADAPTER)  # the kill left it as it was


def test_resume_false_ignores_the_checkpoint_and_a_finished_one_is_never_resumed(
    killed, built_project, tmp_path
):
    project = _copy(killed, tmp_path, {"train": {"resume": False}})
    out = run(TRAIN, project).stdout
    assert [line.split(" written")[0] for line in _resumed(out)] == ["checkpoints: 6"]
    assert sha256(project / ADAPTER) == sha256(built_project / ADAPTER)
    set_params(project, {"train": {"resume": True}})
    out = run(["dvc", "repro", "--force", "train"], project).stdout  # after a finished run
    assert [line.split(" written")[0] for line in _resumed(out)] == ["checkpoints: 6"]
    assert sha256(project / ADAPTER) == sha256(built_project / ADAPTER)


def test_two_processes_killed_resume_to_the_uninterrupted_two_process_adapter(
    built_project, tmp_path
):
    params = {"train": {"processes": 2, "checkpoint_every": 4}}
    whole = _copy(built_project, tmp_path / "whole", params)
    run(TRAIN, whole)
    project = _copy(built_project, tmp_path / "killed", params)
    _kill_after(project, TRAIN, 18, signal.SIGKILL)
    out = run(TRAIN, project).stdout
    assert re.search(r"^resuming from epoch 2, step 16$", out, re.M), out
    for name in ("train/loss", "val/accuracy"):  # rank 0 alone logs: each step once
        rows = (project / CURVES / f"{name}.tsv").read_text().splitlines()
        assert [row.split("\t")[0] for row in rows] == ["step", "12", "24"], name
    a, b = load_file(whole / ADAPTER), load_file(project / ADAPTER)
    assert sorted(a) == sorted(b)
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, atol=1e-6, rtol=0, msg=name)
