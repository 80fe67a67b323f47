"""Reading the project's own files: YAML the way DVC reads it, JSON, UTF-8 text, the class
names a stage records, a safetensors file's tensors, a file's sha256. A damaged file is one
line naming it, never a traceback."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lora_core.errors import DataError, LoraSst2Error, damaged

if TYPE_CHECKING:  # torch is loaded by load_tensors alone: the data stages never load it
    import torch


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` and ``5e-05`` as floats, as YAML 1.2 (and DVC) do.

    PyYAML follows YAML 1.1, where a float needs a dot; ``dvc exp run -S train.lr=0.00005``
    writes ``5e-05``, which would otherwise arrive as a string.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file the way DVC does: ``1e-4`` is a float (YAML 1.2), not a string.

    Text that is not YAML (or not UTF-8) is a ConfigError naming the file and the line.
    """
    path = Path(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except UnicodeDecodeError:
        raise LoraSst2Error(f"{path} is not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise LoraSst2Error(f"{path} is {yaml_problem(err)}") from None


def yaml_problem(err: Exception) -> str:
    """'not valid YAML (line N): what' for a PyYAML or ruamel (DVC's) parse error."""
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"not valid YAML{where}: {problem}"


def decode_utf8(raw: bytes, where: str, error: type[LoraSst2Error] = LoraSst2Error) -> str:
    """``raw`` as text (a UTF-8 BOM dropped); bad bytes are one ``error`` naming the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise error(f"{where}:{line}: bytes that are not UTF-8 (at byte {err.start})") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; text that is not JSON is one error naming the file and the line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LoraSst2Error(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise LoraSst2Error(f"{path} is not valid JSON (line {err.lineno}): {err.msg}") from None


def read_written(path: Path, stage: str) -> dict:
    """The JSON file ``stage`` wrote beside its outputs (prepare's ``summary.json``,
    tokenize's ``task.json``); missing is one line naming the stage to run."""
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro {stage}` first")
    return read_json(path)


def read_classes(
    path: Path, stage: str, raw: dict | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(class names, text columns) from the JSON file ``stage`` wrote (``raw``: that file,
    read already). Missing or damaged is one line naming the stage to run again."""
    raw = read_written(path, stage) if raw is None else raw
    try:
        names, columns = tuple(raw["labels"]), tuple(raw["text_columns"])
    except (KeyError, TypeError):
        raise damaged(path, stage) from None
    if len(names) < 2 or not all(isinstance(v, str) for v in (*names, *columns)):
        raise damaged(path, stage)
    return names, columns


def sha256(path: str | Path) -> str:
    """The file's sha256, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors (torch, loaded only here); a damaged file is one line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise LoraSst2Error(f"{path} is not a readable safetensors file: {err}") from None
