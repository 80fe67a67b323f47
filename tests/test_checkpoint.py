"""Checkpoints: written atomically, read back only when they fit, resumed bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from lora_core import checkpoint as ckpt
from lora_core.checkpoint import Checkpoints
from lora_core.config import LoraConfig, ModelConfig, TrainConfig
from lora_core.files import atomic_path, remove_temporaries
from lora_core.loop import train_model
from lora_core.model import build_classifier
from lora_core.pretrained import load_tokenizer
from lora_core.tokens import tokenize
from tests.tiny import tiny_sentences, write_tiny_model

PRINTS = {"params": "p", "data": "d", "code": "c", "torch": torch.__version__}
CFG = TrainConfig(epochs=2, batch_size=16, lr=0.01, bucket_chunk=2)  # 6 steps an epoch


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model folder and 96 tokenized sentences."""
    base = tmp_path_factory.mktemp("base")
    write_tiny_model(base / "tiny")
    rows = tiny_sentences(96, seed=0)
    tokenizer = load_tokenizer("tiny", base_dir=base)
    split, _ = tokenize(tokenizer, [s for s, _ in rows], [y for _, y in rows], 32)
    return base, split


def _model(base):
    return build_classifier(ModelConfig(name="tiny"), LoraConfig(), "lora", True, 0, base)


def _train(setup, checkpoints=None):
    base, split = setup
    cpu = torch.device("cpu")
    model = _model(base)
    return train_model(
        model, split, split, CFG, cpu, "fp32", progress=False, checkpoints=checkpoints
    )


def _saving(tmp_path):
    """A Checkpoints that saves each checkpoint into its own folder, named by its step."""

    def save(snapshot):
        ckpt.save(tmp_path / f"at{snapshot.step}", snapshot, PRINTS)

    return Checkpoints(every=4, save=save)


def test_a_resumed_run_ends_bit_identical_from_every_checkpoint(setup, tmp_path):
    base, _ = setup
    full = _train(setup, _saving(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["at12", "at4", "at6", "at8"]
    assert full.checkpoints == 4 and full.checkpoint_seconds > 0
    for folder in sorted(tmp_path.iterdir()):
        snapshot, line = ckpt.load(folder, PRINTS, _model(base), 1, 6)
        step = int(folder.name[2:])
        assert line == f"resuming from epoch {step // 6 + 1}, step {step}"
        again = _train(setup, Checkpoints(every=4, resume=snapshot))
        assert again.curve == full.curve and again.val_accuracy == full.val_accuracy
        assert (again.best_epoch, again.examples) == (full.best_epoch, full.examples)
        assert set(again.best_state) == set(full.best_state)
        for name, value in full.best_state.items():
            assert torch.equal(again.best_state[name], value), (folder.name, name)


def test_save_keeps_one_tensors_file_and_finish_leaves_only_the_marker(setup, tmp_path):
    folder = tmp_path / "checkpoint"

    def save(snapshot):
        ckpt.save(folder, snapshot, PRINTS)
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["state.json", f"tensors-{snapshot.step:09d}.safetensors"]

    _train(setup, Checkpoints(every=4, save=save))
    ckpt.finish(folder)
    assert [p.name for p in folder.iterdir()] == ["state.json"]
    assert (folder / "state.json").read_text() == '{\n  "finished": true\n}\n'
    assert ckpt.load(folder, PRINTS, None, 1, 6) == (None, None)


def _one_checkpoint(setup, tmp_path):
    folder = tmp_path / "checkpoint"
    _train(setup, Checkpoints(every=4, save=lambda s: ckpt.save(folder, s, PRINTS)))
    return folder


def test_a_checkpoint_of_other_params_data_code_or_torch_is_one_line(setup, tmp_path):
    base, _ = setup
    folder = _one_checkpoint(setup, tmp_path)
    start = f"checkpoint {folder} was made with"
    cases = {
        "params": "other params",
        "data": "other data",
        "code": "other code",
        "torch": f"torch {torch.__version__} (this is 0.0)",
    }
    for key, words in cases.items():
        prints = {**PRINTS, key: "0.0"}
        assert ckpt.load(folder, prints, _model(base), 1, 6) == (
            None,
            f"{start} {words}: starting fresh",
        )
    prints = {**PRINTS, "params": "x", "code": "y"}
    line = f"{start} other params and other code: starting fresh"
    assert ckpt.load(folder, prints, _model(base), 1, 6) == (None, line)


def test_a_damaged_checkpoint_is_one_line(setup, tmp_path):
    base, _ = setup
    folder = _one_checkpoint(setup, tmp_path)
    tensors = next(folder.glob("tensors-*"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    line = (
        f"checkpoint {folder} is damaged (its tensors file is missing or changed): starting fresh"
    )
    assert ckpt.load(folder, PRINTS, _model(base), 1, 6) == (None, line)
    (folder / "state.json").write_text('{"step": ')
    line = f"checkpoint {folder} is damaged (not valid JSON (line 1): Expecting value): "
    assert ckpt.load(folder, PRINTS, _model(base), 1, 6) == (None, line + "starting fresh")
    (folder / "state.json").write_text("[1]")
    line = f"checkpoint {folder} is damaged (state.json is not a checkpoint's): starting fresh"
    assert ckpt.load(folder, PRINTS, _model(base), 1, 6) == (None, line)


def _edit_state(folder, change, seal=False):
    """state.json changed by ``change``; with ``seal``, resealed as a forger would."""
    state = json.loads((folder / "state.json").read_text())
    change(state)
    if seal:
        state["state_sha256"] = ckpt._seal(state)
    (folder / "state.json").write_text(json.dumps(state))


CHANGED = "state.json changed since it was written"


@pytest.fixture(scope="module")
def one_written(setup, tmp_path_factory):
    return _one_checkpoint(setup, tmp_path_factory.mktemp("written"))


@pytest.fixture
def written(one_written, tmp_path):
    """A copy of one checkpoint, to damage."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(one_written, folder)
    return folder


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: s.update(tensors="../../outside.safetensors"), "its tensors file is named "
         "'../../outside.safetensors', not tensors-<step>.safetensors"),
        (lambda s: s.update(tensors="/etc/passwd"), "its tensors file is named '/etc/passwd', "
         "not tensors-<step>.safetensors"),
        (lambda s: s.update(tensors=["x"]), "its tensors file is named ['x'], not tensors-<step>"
         ".safetensors"),
        (lambda s: s["scheduler"].update(last_epoch=0), CHANGED),
        (lambda s: s["optimizer"]["param_groups"][0].update(lr=1.0), CHANGED),
        (lambda s: s["rng"]["python"][1].reverse(), CHANGED),
        (lambda s: s.update(step=3), CHANGED),
        (lambda s: s.pop("state_sha256"), CHANGED),
    ],
)  # fmt: skip
def test_any_damage_to_a_checkpoint_is_one_line_naming_it(setup, written, change, why):
    base, _ = setup
    folder = written
    _edit_state(folder, change)
    line = f"checkpoint {folder} is damaged ({why}): starting fresh"
    assert ckpt.load(folder, PRINTS, _model(base), 1, 6) == (None, line)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: s["result"].update(curve=5), "its result state is not one a checkpoint holds"),
        (lambda s: s.update(step="4"), "its step state is not one a checkpoint holds"),
        (lambda s: s.update(scheduler=[]), "its scheduler state is not one a checkpoint holds"),
        (lambda s: s["rng"].update(numpy=["PCG64", 0, 0, 0.0]), "its rng state is not one"),
        (lambda s: s["rng"]["python"][1].pop(), "its rng state is not one a checkpoint holds"),
        (lambda s: s["optimizer"]["param_groups"].pop(), "its optimizer state is not one a"),
        (lambda s: s["optimizer"]["scalars"].update(x=1), "its optimizer state is not one a"),
    ],
)
def test_a_resealed_state_a_restore_would_choke_on_starts_fresh(setup, written, change, why):
    base, _ = setup
    folder = written
    _edit_state(folder, change, seal=True)
    snapshot, line = ckpt.load(folder, PRINTS, _model(base), 1, 6)
    assert snapshot is None and line.startswith(f"checkpoint {folder} does not fit this run (")
    assert why in line and line.endswith("): starting fresh")


def test_a_checkpoint_of_another_process_count_is_one_line(setup, tmp_path):
    base, _ = setup
    folder = _one_checkpoint(setup, tmp_path)
    snapshot, line = ckpt.load(folder, PRINTS, _model(base), 2, 6)
    assert snapshot is None
    why = "it was written by another number of processes"
    assert line == f"checkpoint {folder} does not fit this run ({why}): starting fresh"


def test_remove_temporaries_removes_only_this_and_dead_processes_own(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()  # its PID names no process now
    me, live = os.getpid(), os.getppid()
    mine = [f".adapter.json.{me}.abcdefgh.tmp", f".train.json.{me}.x_2y3z4w.tmp.old.tmp"]
    left_by_dead = f".eval.json.{dead.pid}.abcdefgh.tmp"
    others = [f".adapter.json.{live}.abcdefgh.tmp", ".notes.tmp", ".a.json.abc.tmp", "keep.tmp"]
    for name in [*mine, left_by_dead, *others, "a.json"]:
        (tmp_path / name).write_text("")
    (tmp_path / f".plots.{me}.12345678.tmp").mkdir()
    removed = [p.name for p in remove_temporaries(tmp_path)]
    assert removed == sorted([*mine, left_by_dead, f".plots.{me}.12345678.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "a.json"])


def test_temporaries_carry_this_process_id(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        assert tmp.name.startswith(f".a.json.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
