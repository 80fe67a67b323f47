"""Atomic writes: an output is either the old file or the complete new one, never half.

Nothing here deletes what it did not write: a folder is replaced only by a swap of two
renames, and never the working directory, a folder above it, or a project (a folder with
``.git``, ``.dvc`` or ``dvc.yaml``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lora_core.errors import LoraSst2Error

PROJECT_MARKERS = (".git", ".dvc", "dvc.yaml")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_modes(path: Path) -> None:
    """Give ``path`` (and all under it) the modes a plain ``open(..., "w")`` would give."""
    mask = _umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)  # mkstemp/safetensors make 0600


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        plain_modes(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Pretty, stable JSON with a trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def check_replaceable(path: str | Path) -> None:
    """Refuse a folder that holds the working directory or a project: it is not an output."""
    target = Path(path).resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise LoraSst2Error(
            f"{path} is the working directory or a folder above it: refusing to replace it; "
            "choose a new folder"
        )
    found = [m for m in PROJECT_MARKERS if (target / m).exists()]
    if found:
        raise LoraSst2Error(
            f"{path} holds a project ({found[0]}): refusing to replace it; choose a new folder"
        )


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; it takes ``path``'s place whole, only on success.

    The old folder is renamed aside, the new one renamed in, and only then is the old one
    removed, so a failure at any point leaves one complete folder at ``path``.
    """
    path = Path(path)
    if path.exists():
        check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        yield tmp
        plain_modes(tmp)
        if path.exists() or path.is_symlink():
            old = path.with_name(f"{tmp.name}.old")
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:
                os.replace(old, path)
                old = None
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.is_symlink():
                leftover.unlink()
            elif leftover is not None and leftover.exists():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()


@contextmanager
def quiet_hub() -> Iterator[None]:
    """Silence the hub client's retry warnings: a failed download becomes our one-line error."""
    from huggingface_hub.utils import logging as hub_logging

    logger = hub_logging.get_logger("huggingface_hub")
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)
