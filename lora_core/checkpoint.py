"""The train stage's checkpoint folder: write it atomically, read it back only when it fits.

The folder holds ``state.json`` and one ``tensors-<step>.safetensors`` that it names (with
its sha256); ``state_sha256`` seals the rest of state.json (optimizer, scheduler, RNG, step,
bookkeeping), so any damage means "starting fresh", never a partial resume. A new
checkpoint writes its tensors file first, then replaces state.json in one rename, then
removes the older tensors: a kill at any moment leaves the old checkpoint or the new one,
whole. A finished run leaves only ``{"finished": true}``, so a later run
(``dvc repro --force train``) starts fresh and the folder costs nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lora_core.config import TRAIN_READS, Params
from lora_core.errors import LoraSst2Error, shown
from lora_core.files import atomic_path, remove_temporaries, write_json
from lora_core.readers import read_json, sha256
from lora_core.snapshot import Snapshot, check_fits

FOLDER = "checkpoint"  # under the models folder (dvc.yaml: models/checkpoint, persist)
STATE = "state.json"
TENSORS = re.compile(r"tensors-[0-9]{9}\.safetensors")  # the one name state.json may give
SEAL = "state_sha256"  # state.json's key: the sha256 of all the rest
FINISHED = {"finished": True}
UNFINGERPRINTED = ("resume", "checkpoint_every")  # train keys that change no number


@dataclass
class Checkpoints:
    """When the loop saves its state, who writes it, and the state to continue from.

    ``save`` gets a ``Snapshot`` at the end of every epoch and every ``every`` optimizer
    steps (with the losses not yet averaged); only rank 0 calls it, but every rank captures
    (the RNG states are gathered). The loop does no file I/O: ``save`` is the caller's.
    """

    every: int = 0  # 0: at epoch ends only
    save: Callable[[Snapshot], None] | None = None
    resume: Snapshot | None = None


def checkpoint_folder(models_dir: str | Path) -> Path:
    """Where the train stage keeps its checkpoint: ``<models>/checkpoint``."""
    return Path(models_dir) / FOLDER


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def fingerprint(params: Params, tokenized: str | Path, stage_file: str | Path) -> dict[str, str]:
    """What a checkpoint must have been made with to be continued: the params train reads,
    every file of the tokenized data (the splits and task.json: class names, text columns),
    the code (stage script and every lora_core module loaded) and torch."""
    read = params.select(TRAIN_READS)
    read["train"] = {k: v for k, v in read["train"].items() if k not in UNFINGERPRINTED}
    folder = Path(tokenized)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    data = {str(p.relative_to(folder)): sha256(p) for p in files}
    modules = {
        name: Path(module.__file__)
        for name, module in sorted(sys.modules.items())
        if name.split(".")[0] == "lora_core" and getattr(module, "__file__", None)
    }
    code = {name: sha256(path) for name, path in modules.items()}
    code["stage"] = sha256(Path(stage_file))
    return {
        "params": _digest(read),
        "data": _digest({k: v for k, v in data.items() if not k.startswith(".")}),
        "code": _digest(code),
        "torch": torch.__version__,
    }


def _seal(state: dict) -> str:
    """The hash of everything state.json holds but the seal itself: with the tensors file's
    own sha256 among it, it covers the whole state a resume restores."""
    return _digest({k: v for k, v in state.items() if k != SEAL})


def save(folder: str | Path, snapshot: Snapshot, prints: dict[str, str]) -> None:
    """Write ``snapshot`` as the folder's checkpoint, atomically (see the module's note)."""
    folder = Path(folder)
    name = f"tensors-{snapshot.step:09d}.safetensors"
    with atomic_path(folder / name) as tmp:
        tensors = {k: v.contiguous() for k, v in snapshot.tensors.items()}
        save_file(tensors, str(tmp))
    state = {"fingerprint": prints, "tensors": name, "sha256": sha256(folder / name)}
    state = json.loads(json.dumps({**state, **snapshot.state}))  # as read back: str keys
    write_json(folder / STATE, {**state, SEAL: _seal(state)})
    _remove_tensors(folder, keep=name)


def _remove_tensors(folder: Path, keep: str | None = None) -> None:
    for path in folder.glob("tensors-*.safetensors"):
        if path.name != keep:
            path.unlink()


def finish(folder: str | Path) -> None:
    """Mark the checkpoint finished: a later run starts fresh. Only state.json is left."""
    folder = Path(folder)
    write_json(folder / STATE, FINISHED)
    _remove_tensors(folder)


def _mismatch(saved: dict, prints: dict[str, str]) -> str:
    what = {"params": "other params", "data": "other data", "code": "other code"}
    what["torch"] = f"torch {saved.get('torch')} (this is {prints['torch']})"
    differ = [what[k] for k in prints if saved.get(k) != prints[k]]
    return " and ".join(differ)


def _read(folder: Path, prints: dict[str, str], model, processes: int) -> Snapshot | str | None:
    """The checkpoint, why it cannot be continued, or None when there is none to continue."""
    try:
        state = read_json(folder / STATE)
    except LoraSst2Error as err:
        return f"is damaged ({str(err).removeprefix(str(folder / STATE) + ' is ')})"
    if state == FINISHED:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("fingerprint"), dict):
        return "is damaged (state.json is not a checkpoint's)"
    if state["fingerprint"] != prints:
        return f"was made with {_mismatch(state['fingerprint'], prints)}"
    name = state.get("tensors")
    if not isinstance(name, str) or not TENSORS.fullmatch(name):
        return (
            f"is damaged (its tensors file is named {shown(name)}, not tensors-<step>.safetensors)"
        )
    tensors = folder / name
    if not tensors.is_file() or sha256(tensors) != state.get("sha256"):
        return "is damaged (its tensors file is missing or changed)"
    if state.get(SEAL) != _seal(state):
        return "is damaged (state.json changed since it was written)"
    try:
        snapshot = Snapshot(load_file(str(tensors)), state)
    except (SafetensorError, OSError, ValueError) as err:
        return f"is damaged ({type(err).__name__})"
    why = check_fits(snapshot, model, processes)
    return f"does not fit this run ({why})" if why else snapshot


def load(
    folder: str | Path, prints: dict[str, str], model, processes: int, steps_per_epoch: int
) -> tuple[Snapshot | None, str | None]:
    """The checkpoint to continue, if any, and the one line to print about it."""
    folder = Path(folder)
    if not (folder / STATE).exists():
        return None, None
    found = _read(folder, prints, model, processes)
    if found is None:
        return None, None
    if isinstance(found, str):
        return None, f"checkpoint {folder} {found}: starting fresh"
    epoch, _ = found.position(steps_per_epoch)
    return found, f"resuming from epoch {epoch}, step {found.step:,}"


def checkpointing(
    folder: str | Path,
    params: Params,
    tokenized: str | Path,
    stage_file: str | Path,
    model,
    world,
    train_examples: int,
) -> Checkpoints:
    """The loop's ``Checkpoints`` for this run: rank 0 saves into ``folder``; every rank
    continues the checkpoint found there when it fits and ``train.resume`` is true. Rank 0
    prints one line when it resumes or starts fresh over a checkpoint it cannot use."""
    from lora_core.batches import epoch_steps

    cfg, prints = params.train, fingerprint(params, tokenized, stage_file)
    resume, line = None, None
    if cfg.resume:
        per_epoch = epoch_steps(train_examples, cfg)
        resume, line = load(folder, prints, model, world.size, per_epoch)
    if line and world.main:
        print(line, flush=True)
    if world.main:
        remove_temporaries(folder)
    writes = functools.partial(save, folder, prints=prints) if world.main else None
    return Checkpoints(every=cfg.checkpoint_every, save=writes, resume=resume)
