"""Training over several processes (torchrun, DDP over gloo) equals training in one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lora_core.distributed import World
from tests.conftest import run, set_params, snapshot, work_copy

TRAIN = [sys.executable, "-m", "stages.train", "--no-progress"]


def test_share_splits_a_global_batch_evenly_and_weights_the_sums():
    indices = np.array([7, 3, 9, 1, 4])
    shares = [World(rank=r, size=2).share(indices) for r in range(2)]
    assert [part.tolist() for part, _ in shares] == [[7, 3, 9], [1, 4]]
    assert [weight for _, weight in shares] == [0.4, 0.4]  # 2 ranks / 5 examples
    assert World().share(indices)[0].tolist() == indices.tolist()


def test_share_gives_a_rank_without_examples_one_at_weight_zero():
    part, weight = World(rank=2, size=3).share(np.array([5, 6]))
    assert part.tolist() == [5] and weight == 0.0


def test_mean_of_one_process_is_its_own_value():
    values = torch.tensor([1.5, 2.5])
    assert World().mean(values) is values


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def project(built_project, tmp_path, monkeypatch):
    """The tiny project, trained in fp32 whatever the CPU or LORA_SST2_TEST_PRECISION.

    In fp32 the maths of N processes is one process's up to the order of float sums, so the
    adapters agree within 1e-5. bf16 has its own test and tolerance below.
    """
    copy = work_copy(built_project, tmp_path, monkeypatch)
    # dropout masks are drawn per rank, so the two runs would drop different elements
    set_params(copy, {"lora": {"dropout": 0.0}, "train": {"precision": "fp32"}})
    return copy


def _trained(project: Path) -> tuple[dict[str, torch.Tensor], dict]:
    tensors = load_file(project / "models/adapter.safetensors")
    return tensors, json.loads((project / "metrics/train.json").read_text())


def _assert_same_training(one: tuple, many: tuple, processes: int) -> None:
    (tensors_1, metrics_1), (tensors_n, metrics_n) = one, many
    assert sorted(tensors_n) == sorted(tensors_1)
    for name, tensor in tensors_1.items():
        torch.testing.assert_close(tensors_n[name], tensor, atol=1e-5, rtol=0, msg=name)
    assert list(metrics_n) == list(metrics_1)
    assert (metrics_1["processes"], metrics_n["processes"]) == (1, processes)
    assert metrics_n["train_examples_seen"] == metrics_1["train_examples_seen"]


def test_two_processes_train_the_same_adapter_as_one(project):
    run(TRAIN, project)
    one = _trained(project)
    (project / "models/adapter.safetensors").unlink()
    set_params(project, {"train": {"processes": 2}})
    proc = run(TRAIN, project)
    assert proc.stdout.count("best epoch") == 1  # rank 0 alone reports
    _assert_same_training(one, _trained(project), 2)


def _curve(project: Path) -> list[float]:
    rows = (project / "metrics/train/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    return [float(row.split("\t")[1]) for row in rows]


def _relative_gaps(one: dict, other: dict) -> list[float]:
    """Per LoRA tensor, the norm of the difference over the norm of ``one``'s tensor."""
    return [float((other[k] - t).norm() / t.norm()) for k, t in one.items() if "lora_" in k]


def test_two_processes_in_bf16_train_what_one_does_within_bf16_rounding(project):
    """What a bf16 run keeps when its batches are cut differently, and why not more.

    bf16 autocast rounds every matmul to 8 significant bits, and each rank multiplies a
    batch of another shape, so the kernels round differently. The forward pass keeps that
    rounding: the first window's mean loss agrees within 1e-3 (measured: 8e-5). The weights
    do not: Adam divides each gradient coordinate by its own running RMS, so a coordinate
    whose gradient is at rounding level steps by up to lr either way, and the runs drift
    apart. Each LoRA tensor stays within 25% of the one-process tensor in norm (measured on
    an Intel Xeon with AMX: 13%), where a run with another seed is 150% away.
    """
    set_params(project, {"train": {"precision": "bf16", "epochs": 3, "lr": 0.05, "batch_size": 8}})
    run(TRAIN, project)
    (tensors_1, metrics_1), curve_1 = _trained(project), _curve(project)
    set_params(project, {"train": {"processes": 2}})
    run(TRAIN, project)
    (tensors_2, metrics_2), curve_2 = _trained(project), _curve(project)
    assert (metrics_1["precision"], metrics_2["precision"]) == ("bf16", "bf16")
    assert metrics_2["train_examples_seen"] == metrics_1["train_examples_seen"]
    assert sorted(tensors_2) == sorted(tensors_1) and len(curve_2) == len(curve_1) == 6
    assert curve_2[0] == pytest.approx(curve_1[0], rel=1e-3)
    assert max(_relative_gaps(tensors_1, tensors_2)) < 0.25
    set_params(project, {"train": {"processes": 1, "seed": 7}})  # the tolerance can fail
    run(TRAIN, project)
    assert min(_relative_gaps(tensors_1, _trained(project)[0])) > 0.25


def test_a_failure_in_the_processes_is_one_line_and_writes_nothing(project):
    set_params(project, {"train": {"processes": 2, "lr": 1e9}})  # diverges at once
    before = snapshot(project, skip=("metrics/live/",))  # DVCLive's live view moves
    proc = run(TRAIN, project, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: training diverged: loss is nan at step 3; lower train.lr (now 1e+09); "
        "no adapter or metrics were written"
    ]
    assert snapshot(project, skip=("metrics/live/",)) == before  # earlier outputs untouched


def test_missing_tokenized_data_is_one_line_before_any_process_starts(project):
    set_params(project, {"train": {"processes": 2}})
    proc = run([*TRAIN, "--tokenized", "nowhere"], project, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: nowhere/task.json not found: run `dvc repro tokenize` first\n"


def test_two_torchrun_launchers_as_two_nodes_train_the_same_adapter(project):
    run(TRAIN, project)
    one = _trained(project)
    (project / "models/adapter.safetensors").unlink()
    port = _free_port()
    launcher = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
        "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=test",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen([*launcher, *TRAIN[1:]], cwd=project, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    _assert_same_training(one, _trained(project), 2)
