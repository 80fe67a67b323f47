"""Typed, validated params: one frozen dataclass per section of params.yaml."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lora_core.errors import LoraSst2Error


class ConfigError(LoraSst2Error):
    """A params.yaml value that is missing, mistyped or out of range."""


def _fail(section: str, key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"params.yaml: {section}.{key} = {value!r} is not allowed: {allowed}")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # finite: YAML reads 1e400 as inf
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and _type_ok(v, float) for k, v in value.items()
        )
    return isinstance(value, hint)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    if typing.get_origin(hint) is dict:
        return "a mapping of metric names to numbers"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


class _Section:
    """Type-checks every field against its annotation, then runs the section's rules."""

    SECTION = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _type_ok(value, hints[f.name]):
                _fail(self.SECTION, f.name, value, f"must be {_describe(hints[f.name])}")
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
            elif type(value) is int and float in (hints[f.name], *typing.get_args(hints[f.name])):
                object.__setattr__(self, f.name, float(value))
        self.check()

    def check(self) -> None:
        """Section-specific range checks."""

    def require(self, key: str, ok: bool, allowed: str) -> None:
        if not ok:
            _fail(self.SECTION, key, getattr(self, key), allowed)


@dataclass(frozen=True)
class DataConfig(_Section):
    SECTION = "data"
    source: str = "nyu-mll/glue"
    config: str = "sst2"
    val_fraction: float = 0.1
    seed: int = 42
    max_train_examples: int | None = None

    def check(self) -> None:
        self.require("val_fraction", 0 < self.val_fraction < 1, "must be > 0 and < 1")
        n = self.max_train_examples
        self.require("max_train_examples", n is None or n >= 1, "must be null or >= 1")


@dataclass(frozen=True)
class ModelConfig(_Section):
    SECTION = "model"
    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    max_length: int = 128

    def check(self) -> None:
        self.require("name", bool(self.name.strip()), "must be a hub id or a folder name")
        self.require("max_length", self.max_length >= 2, "must be >= 2")


@dataclass(frozen=True)
class LoraConfig(_Section):
    SECTION = "lora"
    r: int = 4
    alpha: float = 16.0
    dropout: float = 0.1
    targets: tuple[str, ...] | str = ("query", "value")
    rslora: bool = False

    def check(self) -> None:
        self.require("r", self.r >= 1, "must be an integer >= 1")
        self.require("alpha", self.alpha > 0, "must be > 0")
        self.require("dropout", 0 <= self.dropout < 1, "must be >= 0 and < 1")
        self.require("targets", len(self.targets) > 0, "must name at least one module")


@dataclass(frozen=True)
class TrainConfig(_Section):
    SECTION = "train"
    mode: str = "lora"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    train_pooler: bool = False
    model_dropout: float | None = 0.0  # the model's own dropout while training; None: config's
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    bucket_chunk: int = 64

    def check(self) -> None:
        self.require("mode", self.mode in ("lora", "head", "full"), "use lora, head or full")
        self.require("epochs", self.epochs >= 1, "must be an integer >= 1")
        self.require("batch_size", self.batch_size >= 1, "must be an integer >= 1")
        self.require("lr", self.lr > 0, "must be > 0")
        self.require("weight_decay", self.weight_decay >= 0, "must be >= 0")
        self.require("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be >= 0 and < 1")
        self.require("max_grad_norm", self.max_grad_norm > 0, "must be > 0")
        p = self.model_dropout
        self.require("model_dropout", p is None or 0 <= p < 1, "must be null or >= 0 and < 1")
        self.require("device", self.device in DEVICES, f"use one of {', '.join(DEVICES)}")
        self.require("precision", self.precision in PRECISIONS, f"use {', '.join(PRECISIONS)}")
        self.require("bucket_chunk", self.bucket_chunk >= 1, "must be an integer >= 1")


@dataclass(frozen=True)
class EvaluateConfig(_Section):
    SECTION = "evaluate"
    batch_size: int = 128
    precision: str = "fp32"

    def check(self) -> None:
        self.require("batch_size", self.batch_size >= 1, "must be an integer >= 1")
        self.require("precision", self.precision in PRECISIONS, f"use {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class GateConfig(_Section):
    """How far each metric may move the wrong way before `lora-sst2 gate` fails."""

    SECTION = "gate"
    max_drop: dict[str, float] = field(default_factory=lambda: {"test.accuracy": 0.005})

    def check(self) -> None:
        bad = [k for k, v in self.max_drop.items() if v < 0]
        self.require("max_drop", not bad, f"thresholds must be >= 0 (see {', '.join(bad)})")


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SECTIONS: dict[str, type[_Section]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "lora": LoraConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "gate": GateConfig,
}


@dataclass(frozen=True)
class Params:
    """All of params.yaml, validated."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    @classmethod
    def from_dict(cls, raw: Any) -> Params:
        """Build and validate from the parsed YAML mapping."""
        if not isinstance(raw, dict):
            raise ConfigError(f"params.yaml: expected a mapping of sections, got {raw!r}")
        for name in raw:
            if name not in SECTIONS:
                raise ConfigError(
                    f"params.yaml: unknown section {name!r}; allowed: {', '.join(SECTIONS)}"
                )
        missing = [name for name in SECTIONS if name not in raw]
        if missing:
            raise ConfigError(f"params.yaml: missing section {missing[0]!r}")
        return cls(**{name: _build(kind, name, raw[name]) for name, kind in SECTIONS.items()})


def _build(kind: type[_Section], name: str, raw: Any) -> _Section:
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: section {name!r} must be a mapping, got {raw!r}")
    allowed = [f.name for f in dataclasses.fields(kind)]
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"params.yaml: unknown key {name}.{key}; allowed: {', '.join(sorted(allowed))}"
            )
    return kind(**raw)


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
    """Parse a YAML file the way DVC does: ``1e-4`` is a float (YAML 1.2), not a string."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Loader)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = load_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"params file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return Params.from_dict(raw)
