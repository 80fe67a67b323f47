"""One training over several processes: torchrun's environment, the process group, and
each rank's slice of a global batch. With one process none of it costs anything."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from lora_core.errors import LoraSst2Error

LAUNCHED = "TORCHELASTIC_RUN_ID"  # set by torchrun in every process it starts
USER_ERROR = 2  # the exit status of a stage stopped by a user error (errors.py)
RANK0_FIRST_SECONDS = 30.0  # how long other ranks wait before their own exit on a user error


@dataclass(frozen=True)
class World:
    """This process's place among all of them: rank 0 alone validates and writes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, indices: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's slice of a global batch, and the weight of its summed loss.

        Slices are as even as ``np.array_split`` makes them. Each rank's loss is its sum
        times ``size / len(indices)``; DDP averages the gradients over ranks, which gives
        the gradient of the mean over the global batch, as one process computes it. A rank
        whose slice is empty (a batch smaller than the world) runs one example at weight 0.
        """
        part = np.array_split(indices, self.size)[self.rank]
        if len(part) == 0:
            return indices[:1], 0.0
        return part, self.size / len(indices)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of per-rank ``values`` (the same shape on every rank)."""
        if self.size == 1:
            return values
        values = values.clone()
        torch.distributed.all_reduce(values)
        return values / self.size

    def gather(self, value: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``value`` (the same shape everywhere), in rank order, on the CPU."""
        if self.size == 1:
            return [value.cpu()]
        nccl = torch.distributed.get_backend() == "nccl"
        device = torch.device("cuda", self.local_rank) if nccl else torch.device("cpu")
        parts = [torch.empty_like(value, device=device) for _ in range(self.size)]
        torch.distributed.all_gather(parts, value.to(device))
        return [part.cpu() for part in parts]


def launched() -> bool:
    """Whether torchrun started this process (then its environment says rank and size)."""
    return LAUNCHED in os.environ


def launch(processes: int, module: str, argv: list[str]) -> int:
    """Run ``python -m module argv`` in ``processes`` local processes through torchrun.

    Only rank 0's output reaches the console, and each process gets an equal share of the
    CPU's threads. A failure in any process stops all of them (torchrun's default). When
    rank 0 stopped on a user error it has said so in one line, and that is the exit status;
    any other failure is one line here.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    for name in ("torch.distributed.run", "torch.distributed.elastic"):  # no agent chatter
        logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    args = parse_args(
        ["--standalone", f"--nproc-per-node={processes}", "--local-ranks-filter=0"]
        + ["-m", module, *argv]
    )
    try:
        run(args)
    except ChildFailedError as err:
        if err.failures.get(0) is not None and err.failures[0].exitcode == USER_ERROR:
            return USER_ERROR  # rank 0's own line is above
        rank, failure = err.get_first_failure()
        raise LoraSst2Error(
            f"training over {processes} processes failed in rank {rank} (exit code "
            f"{failure.exitcode}); only rank 0 prints: set train.processes: 1 to see why"
        ) from None
    return 0


@contextlib.contextmanager
def joined(device: torch.device) -> Iterator[World]:
    """The world this process belongs to: a process group under torchrun, else one alone."""
    if not launched():
        yield World()
        return
    world = World(
        rank=int(os.environ["RANK"]),
        size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ["LOCAL_RANK"]),
    )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    torch.distributed.init_process_group(backend)
    try:
        yield world
    except LoraSst2Error:
        # A user error (a diverging loss, a missing model) meets every rank at once. Rank 0
        # reports it; the others wait, so that torchrun sees rank 0 fail first and ends them.
        if not world.main:
            time.sleep(RANK0_FIRST_SECONDS)
        raise
    finally:
        torch.distributed.destroy_process_group()
