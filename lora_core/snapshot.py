"""A training run's whole state as named tensors plus JSON, and back; no file I/O.

What a checkpoint holds (``checkpoint.py`` writes and reads it): the trainable tensors, the
optimizer, scheduler and grad-scaler states, the RNG states (torch per rank, numpy, Python),
the position (epoch, optimizer step) and the run's bookkeeping so far (curve, val
accuracies, best epoch and its tensors, examples, seconds). Restored, the run continues
bit for bit as if it had never stopped.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lora_core.distributed import World
from lora_core.errors import is_int, is_number
from lora_core.inject import trainable_parameters


@dataclass
class Snapshot:
    """A run's state: ``tensors`` for safetensors, ``state`` for JSON."""

    tensors: dict[str, torch.Tensor]
    state: dict

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def position(self, steps_per_epoch: int) -> tuple[int, int]:
        """(the epoch to continue, batches of it already done)."""
        epoch = self.step // steps_per_epoch + 1
        return epoch, self.step - (epoch - 1) * steps_per_epoch

    def window(self, rank: int, device: torch.device) -> list[torch.Tensor]:
        """This rank's losses of the unfinished loss window, as the loop held them."""
        saved = self.tensors.get(f"window.{rank}")
        return [] if saved is None else [v.to(device) for v in saved.unbind()]


def _rng(world: World) -> tuple[dict[str, torch.Tensor], dict]:
    """Every random generator training reads; torch's per rank (dropout draws differ)."""
    mine = torch.get_rng_state()
    ranks = world.gather(mine)
    tensors = {f"rng.torch.{rank}": state for rank, state in enumerate(ranks)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for rank, state in enumerate(world.gather(torch.cuda.get_rng_state())):
            tensors[f"rng.cuda.{rank}"] = state
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    state = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, state


def _set_rng(snapshot: Snapshot, world: World) -> None:
    tensors, state = snapshot.tensors, snapshot.state["rng"]
    torch.set_rng_state(tensors[f"rng.torch.{world.rank}"])
    if f"rng.cuda.{world.rank}" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors[f"rng.cuda.{world.rank}"])
    kind, pos, has_gauss, gauss = state["numpy"]
    keys = tensors["rng.numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    saved = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in saved["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().clone()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": saved["param_groups"], "scalars": scalars}


def _optimizer_state(snapshot: Snapshot) -> dict:
    state: dict[int, dict] = {}
    for name, value in snapshot.tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in snapshot.state["optimizer"]["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": snapshot.state["optimizer"]["param_groups"]}


def capture(step, result, done: int, world: World, window: list[torch.Tensor]) -> Snapshot:
    """The run's state after ``done`` optimizer steps, with each rank's unread losses
    (``window``). Every rank calls it: the RNG states and windows are gathered."""
    rng_tensors, rng_state = _rng(world)
    if window:  # the same length on every rank
        stacked = world.gather(torch.stack(window).detach())
        rng_tensors.update({f"window.{rank}": w for rank, w in enumerate(stacked)})
    optim_tensors, optim_state = _optimizer(step.optimizer)
    tensors = {
        f"param.{k}": v.detach().cpu().clone() for k, v in trainable_parameters(step.model).items()
    }
    tensors.update({f"best.{k}": v for k, v in result.best_state.items()})
    tensors.update(optim_tensors)
    tensors.update(rng_tensors)
    state = {
        "step": done,
        "optimizer": optim_state,
        "scheduler": step.scheduler.state_dict(),
        "scaler": step.scaler.state_dict(),
        "rng": rng_state,
        "processes": world.size,
        "result": {
            "curve": result.curve,
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
            "epoch_end_steps": result.epoch_end_steps,
            "best_epoch": result.best_epoch,
            "train_seconds": result.train_seconds,
            "examples": result.examples,
        },
    }
    return Snapshot(tensors, state)


def _count(value) -> bool:
    return is_int(value) and value >= 0


def _rng_ok(rng) -> bool:
    numpy, python = rng.get("numpy"), rng.get("python")
    numpy_ok = isinstance(numpy, list) and len(numpy) == 4 and numpy[0] == "MT19937"
    numpy_ok = numpy_ok and all(_count(v) for v in numpy[1:3]) and is_number(numpy[3])
    python_ok = isinstance(python, list) and len(python) == 3 and _count(python[0])
    internal = python[1] if python_ok else None
    python_ok = python_ok and isinstance(internal, list) and len(internal) == 625
    return numpy_ok and python_ok and all(_count(v) for v in internal)


def _result_ok(result) -> bool:
    lists = ("curve", "val_accuracy", "val_loss", "epoch_end_steps")
    best = result.get("best_epoch")
    return (
        all(isinstance(result.get(key), list) for key in lists)
        and (best is None or _count(best))
        and is_number(result.get("train_seconds"))
        and _count(result.get("examples"))
    )


def _state_problem(state: dict, trainable: int) -> str | None:
    """Which part of the JSON state ``restore`` could not put back, or None: it is checked
    before anything is restored, so a run resumes whole or starts fresh."""
    optimizer = state.get("optimizer")
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    scalars = optimizer.get("scalars") if isinstance(optimizer, dict) else None
    optimizer_ok = isinstance(groups, list) and all(isinstance(g, dict) for g in groups)
    optimizer_ok = optimizer_ok and isinstance(scalars, dict)
    optimizer_ok = optimizer_ok and all(re.fullmatch(r"[0-9]+\..+", k) for k in scalars)
    params = [g.get("params") for g in groups] if optimizer_ok else []
    optimizer_ok = optimizer_ok and all(isinstance(p, list) for p in params)
    optimizer_ok = optimizer_ok and sum(len(p) for p in params) == trainable
    checks = {
        "step": _count(state.get("step")),
        "processes": _count(state.get("processes")),
        "optimizer": optimizer_ok,
        "scheduler": isinstance(state.get("scheduler"), dict),
        "scaler": isinstance(state.get("scaler"), dict),
        "rng": isinstance(state.get("rng"), dict) and _rng_ok(state["rng"]),
        "result": isinstance(state.get("result"), dict) and _result_ok(state["result"]),
    }
    bad = [key for key, ok in checks.items() if not ok]
    return f"its {bad[0]} state is not one a checkpoint holds" if bad else None


def check_fits(snapshot: Snapshot, model: nn.Module, processes: int) -> str | None:
    """Why ``snapshot`` cannot continue training ``model``, or None when it can."""
    try:
        params = trainable_parameters(model)
        for name, p in params.items():
            saved = snapshot.tensors[f"param.{name}"]
            if saved.shape != p.shape or saved.dtype != p.dtype:
                return f"{name} has another shape or dtype"
        keys = ("step", "optimizer", "scheduler", "scaler", "rng", "result")
        if any(key not in snapshot.state for key in keys):
            return "its state lacks a key"
        why = _state_problem(snapshot.state, len(params))
        if why:
            return why
        if snapshot.state["processes"] != processes:
            return "it was written by another number of processes"
        torch_rng = torch.get_rng_state()
        ranks = [snapshot.tensors.get(f"rng.torch.{rank}") for rank in range(processes)]
        if any(
            r is None or r.shape != torch_rng.shape or r.dtype != torch_rng.dtype for r in ranks
        ):
            return "it lacks a rank's random state"
        numpy_keys = snapshot.tensors.get("rng.numpy")
        if numpy_keys is None or tuple(numpy_keys.shape) != (624,):
            return "it lacks numpy's random state"
        optimizer = [n for n in snapshot.tensors if n.startswith("optimizer.")]
        if not all(re.fullmatch(r"optimizer\.[0-9]+\..+", n) for n in optimizer):
            return "an optimizer tensor has another name"
    except (KeyError, TypeError, AttributeError):
        return "a tensor is missing"
    return None


def restore(snapshot: Snapshot, step, result, world: World) -> None:
    """Put ``snapshot`` back into the step's model, optimizer, scheduler and ``result``."""
    step.optimizer.load_state_dict(_optimizer_state(snapshot))
    step.scheduler.load_state_dict(snapshot.state["scheduler"])
    if snapshot.state["scaler"]:
        step.scaler.load_state_dict(snapshot.state["scaler"])
    with torch.no_grad():
        for name, p in trainable_parameters(step.model).items():
            p.copy_(snapshot.tensors[f"param.{name}"])
    saved = snapshot.state["result"]
    result.curve = list(saved["curve"])
    result.val_accuracy = list(saved["val_accuracy"])
    result.val_loss = list(saved["val_loss"])
    result.epoch_end_steps = list(saved["epoch_end_steps"])
    result.best_epoch = saved["best_epoch"]
    result.train_seconds = saved["train_seconds"]
    result.examples = saved["examples"]
    prefix = "best."
    result.best_state = {
        k[len(prefix) :]: v for k, v in snapshot.tensors.items() if k.startswith(prefix)
    }
    _set_rng(snapshot, world)
