"""Atomic writes: an output is either the old file or the complete new one, never half;
and the project's path rules (its root, the folders no output may replace).

Every output is written to a temporary sibling and renamed into place only when all of a
step's outputs are complete. Nothing here deletes what it did not write: a folder is
replaced by a swap of two renames, and never the working directory, a folder above it, or
a project (a folder with ``.git``, ``.dvc`` or ``dvc.yaml``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lora_core.errors import LoraSst2Error

PROJECT_FILE = "dvc.yaml"  # what marks the project root, as DVC finds its repo
PROJECT_MARKERS = (".git", ".dvc", PROJECT_FILE)  # any of them: a folder no output replaces
# Marks a folder as our export, ours to replace, and says what PEFT's files cannot.
EXPORT_MARKER = "lora-sst2-export.json"


def find_project_root(start: Path, markers: tuple[str, ...] = (PROJECT_FILE,)) -> Path | None:
    """The first folder at or above ``start`` that holds one of ``markers``, or None."""
    start = start.resolve()
    found = (p for p in (start, *start.parents) if any((p / m).exists() for m in markers))
    return next(found, None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_modes(path: Path) -> None:
    """Give ``path`` (and all under it) the modes a plain ``open(..., "w")`` would give."""
    mask = _umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)  # mkstemp, safetensors: 0600


def check_replaceable(path: str | Path) -> None:
    """Refuse a folder that holds the working directory or a project: it is not an output."""
    target, cwd = Path(path).resolve(), Path.cwd().resolve()
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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _unwritable(path: Path, err: OSError) -> OSError:
    """The error of a temporary that could not be made or moved, naming the output."""
    return type(err)(err.errno, err.strerror, str(path))


def _rename(source: Path, dest: Path, output: Path) -> None:
    try:
        os.replace(source, dest)
    except OSError as err:
        raise _unwritable(output, err) from None


def _prefix(path: Path) -> str:
    """A temporary's name up to mkstemp's random part: ``.<name>.<pid>.``; the PID says
    whose it is, so clean-up never takes another live process's temporary."""
    return f".{path.name}.{os.getpid()}."


# .<name>.<pid>.<mkstemp's 8 characters>.tmp, and .old.tmp after it for an output set aside
_TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.tmp(\.old\.tmp)?")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on this machine); one we may not signal runs too."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or a number no process can have
        return False
    except PermissionError:
        return True
    return True


def _ours_to_remove(name: str) -> bool:
    match = _TEMPORARY.fullmatch(name)
    if match is None:
        return False  # a user's own .notes.tmp, or a temporary of an older version
    pid = int(match["pid"])
    return pid == os.getpid() or not _alive(pid)


class Staged:
    """Outputs written to temporary siblings, renamed into place together by ``commit``.

    ``file`` and ``folder`` create the temporary at once, so an output folder that cannot
    be written fails before any work is done, not after.
    """

    def __init__(self) -> None:
        self._moves: list[tuple[Path, Path]] = []

    def file(self, path: str | Path) -> Path:
        """A temporary file to write; it becomes ``path`` on commit."""
        path = Path(path)
        if path.is_dir() and not path.is_symlink():  # not ours to remove: the user moves it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
        except OSError as err:
            raise _unwritable(path, err) from None
        os.close(fd)
        self._moves.append((Path(tmp), path))
        return Path(tmp)

    def folder(self, path: str | Path) -> Path:
        """A temporary folder to fill; it replaces ``path`` whole on commit."""
        path = Path(path)
        if path.exists():
            check_replaceable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp"))
        except OSError as err:
            raise _unwritable(path, err) from None
        self._moves.append((tmp, path))
        return tmp

    def commit(self) -> None:
        """Put every temporary in its place, all or none: each old output is first renamed
        aside, and if any step fails, every output done so far is put back as it was."""
        done: list[tuple[Path, Path | None]] = []  # (output, its old version aside)
        try:
            for tmp, path in self._moves:
                plain_modes(tmp)
                old = None
                if path.exists() or path.is_symlink():
                    old = path.with_name(f"{tmp.name}.old.tmp")
                    _rename(path, old, path)
                done.append((path, old))
                _rename(tmp, path, path)
        except BaseException:
            for path, old in reversed(done):  # undo: our new output out, the old one back
                if path.exists() or path.is_symlink():
                    _remove(path)
                if old is not None:
                    os.replace(old, path)
            raise
        for _, old in done:
            if old is not None:
                _remove(old)

    def discard(self) -> None:
        """Remove every temporary left (all of them unless committed)."""
        for tmp, _ in self._moves:
            _remove(tmp)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries that this process, or a run killed before it, left in
    ``folder`` (not below it): only names that ``Staged`` makes, and only those whose PID
    is this process's or no running process's. A live process's temporaries, and any other
    ``.*.tmp`` (a user's own), stay."""
    found = sorted(p for p in Path(folder).glob(".*.tmp") if _ours_to_remove(p.name))
    for path in found:
        _remove(path)
    return found


@contextmanager
def staged() -> Iterator[Staged]:
    """Outputs that appear together when the block succeeds, and not at all when it fails."""
    out = Staged()
    try:
        yield out
        out.commit()
    finally:
        out.discard()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only on success."""
    with staged() as out:
        yield out.file(path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; it takes ``path``'s place whole, only on success."""
    with staged() as out:
        yield out.folder(path)


def json_text(obj: Any) -> str:
    """Pretty, stable JSON with a trailing newline."""
    return json.dumps(obj, indent=2) + "\n"


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    """``json_text(obj)``, written atomically."""
    atomic_write_text(path, json_text(obj))


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
