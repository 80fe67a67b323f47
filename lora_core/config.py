"""Typed, validated params: one frozen dataclass per section of params.yaml."""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.errors import (
    ConfigError,
    check_keys,
    describe_type,
    errors_from,
    fail,
    has_control,
    type_ok,
)
from lora_core.readers import load_yaml

# Upper bounds, so that a typo (batch_size: 1000000000) is refused at once instead of
# exhausting memory mid-run. Sizes past them do not fit a BERT step in memory anyway.
MAX_BATCH = 4096
MAX_EPOCHS = 1000
MAX_LENGTH = 8192
MAX_RANK = 1024
MAX_PROCESSES = 256
BATCH_RANGE = f"must be an integer from 1 to {MAX_BATCH}"
# The params the train stage reads, named as dvc.yaml's train stage lists them (a test holds
# the two equal): its checkpoint fingerprint and its DVCLive params are made of these.
TRAIN_READS = ("model.name", "model.max_length", "model.attention", "lora", "train",
               "evaluate.batch_size")  # fmt: skip


class Section:
    """Type-checks every field against its annotation, then runs the section's rules."""

    SECTION = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not type_ok(value, hints[f.name]):
                fail(self.SECTION, f.name, value, f"must be {describe_type(hints[f.name])}")
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
            elif type(value) is int and float in (hints[f.name], *typing.get_args(hints[f.name])):
                object.__setattr__(self, f.name, float(value))
        self.check()

    def check(self) -> None:
        """Section-specific range checks."""

    def require(self, key: str, ok: bool, allowed: str) -> None:
        if not ok:
            fail(self.SECTION, key, getattr(self, key), allowed)

    def follow(self, key: str, rule: Rule) -> None:
        """Refuse ``key`` by a rule that another section or file shares."""
        self.require(key, rule.test(getattr(self, key)), rule.allowed)


class Rule(typing.NamedTuple):
    """A check that several sections (and adapter.json) share: the same values refused in
    the same words."""

    test: typing.Callable[[Any], bool]
    allowed: str


def distinct_names(names: tuple[str, ...]) -> bool:
    """No blank name and none twice."""
    return len(set(names)) == len(names) and all(n.strip() for n in names)


@dataclass(frozen=True)
class DataConfig(Section):
    SECTION = "data"
    dir: str = "data/raw/sst2"  # the raw files; filled from the hub when it has none
    source: str = "nyu-mll/glue"
    config: str = "sst2"
    text_columns: tuple[str, ...] = ("sentence",)  # one text, or a pair (premise, hypothesis)
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # class names in id order; None: sorted train labels
    split: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.1  # used only when data.dir has a train file and nothing else
    seed: int = 42
    max_train_examples: int | None = None
    dedupe: bool = False  # drop val and test rows whose text is also in train
    max_classes: int = 1000  # more distinct train labels: an id column, refused at prepare

    def check(self) -> None:
        self.require("dir", bool(self.dir.strip()), "must name a folder")
        self.follow("text_columns", TEXT_COLUMNS)
        ok = bool(self.label_column.strip()) and self.label_column not in self.text_columns
        self.require("label_column", ok, "must name a column that is not a text column")
        if self.labels is not None:  # null: the train file's labels, sorted
            self.follow("labels", CLASS_NAMES)
        self.require("split", self.split in SPLIT_KINDS, f"use {', '.join(SPLIT_KINDS)}")
        self.require("val_fraction", 0 < self.val_fraction < 1, "must be > 0 and < 1")
        self.require("test_fraction", 0 < self.test_fraction < 1, "must be > 0 and < 1")
        n = self.max_train_examples
        self.require("max_train_examples", n is None or n >= 1, "must be null or >= 1")
        self.require("max_classes", self.max_classes >= 2, "must be an integer >= 2")


@dataclass(frozen=True)
class ModelConfig(Section):
    SECTION = "model"
    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    max_length: int = 128
    truncation: str = "head"  # head+tail: a long single text keeps its start and its end
    attention: str = "auto"  # the attention kernels; auto: the fastest measured per device

    def check(self) -> None:
        self.follow("name", MODEL_NAME)
        self.follow("max_length", LENGTH)
        ok = self.truncation in TRUNCATIONS
        self.require("truncation", ok, f"use {' or '.join(TRUNCATIONS)}")
        self.require("attention", self.attention in ATTENTIONS, f"use {', '.join(ATTENTIONS)}")


@dataclass(frozen=True)
class LoraConfig(Section):
    SECTION = "lora"
    r: int = 4
    alpha: float = 16.0
    dropout: float = 0.1
    targets: tuple[str, ...] | str = ("query", "value")
    rslora: bool = False
    dropout_mode: str = "token"  # token: one draw per token, on A x; element: PEFT's, on x

    def check(self) -> None:
        self.require("r", 1 <= self.r <= MAX_RANK, f"must be an integer from 1 to {MAX_RANK}")
        self.require("alpha", self.alpha > 0, "must be > 0")
        self.require("dropout", 0 <= self.dropout < 1, "must be >= 0 and < 1")
        modes = DROPOUT_MODES
        self.require("dropout_mode", self.dropout_mode in modes, f"use {' or '.join(modes)}")
        self.require("targets", len(self.targets) > 0, "must name at least one module")
        if isinstance(self.targets, str):
            why = target_regex_problem(self.targets)
            self.require("targets", why is None, why or "")


MAX_TARGET_REGEX = 500  # characters
MAX_WILDCARDS, MAX_GROUPS = 3, 4  # .* and (a|b) in one target regex
_CHAR = r"(?:[\w-]|\\\.)"  # a module-name character, or \.
_PIECE = rf"\.\*|{_CHAR}|\.(?!\*)|\((?:\?:)?{_CHAR}+(?:\|{_CHAR}+)*\)"
_BRANCH = rf"\^?(?:{_PIECE})+\$?"
# Each piece starts with its own character, so neither this check nor the regexes it
# admits backtrack far: no quantifier but .*, and a group holds literal names only.
_TARGET_SHAPE = re.compile(rf"{_BRANCH}(?:\|{_BRANCH})*")
TARGET_REGEX = (
    rf"a target regex holds names, \., ., ^, $, a|b, at most {MAX_WILDCARDS} .* and "
    rf"{MAX_GROUPS} (a|b) groups of names, such as .*\.(query|value); or give a list of suffixes"
)


def target_regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a target regex, or None when it can (params.yaml, an
    adapter.json and a PEFT folder's adapter_config.json all go through here).

    A regex is full-matched against every module name, and Python's matcher has no time
    limit: a nested quantifier such as ``(a+)+b`` would hang loading a downloaded adapter.
    What a target list needs is names, suffixes and alternations, so that shape is all a
    target regex may have: matching it against a model's module names takes milliseconds.
    """
    if len(pattern) > MAX_TARGET_REGEX:
        return f"{TARGET_REGEX} (at most {MAX_TARGET_REGEX} characters)"
    try:
        re.compile(pattern)
    except re.error as err:
        return f"a string is a regex, and this one is not ({err})"
    counts = pattern.count(".*") <= MAX_WILDCARDS and pattern.count("(") <= MAX_GROUPS
    return None if counts and _TARGET_SHAPE.fullmatch(pattern) else TARGET_REGEX


@dataclass(frozen=True)
class TrainConfig(Section):
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
    processes: int = 1  # training processes on this machine (torchrun); batch_size is global
    checkpoint_every: int = 200  # optimizer steps between checkpoints (and every epoch end)
    resume: bool = True  # continue from models/checkpoint when it fits this run

    def check(self) -> None:
        self.follow("mode", MODE)
        self.require("epochs", 1 <= self.epochs <= MAX_EPOCHS, f"must be from 1 to {MAX_EPOCHS}")
        self.require("batch_size", 1 <= self.batch_size <= MAX_BATCH, BATCH_RANGE)
        self.require("lr", self.lr > 0, "must be > 0")
        self.require("weight_decay", self.weight_decay >= 0, "must be >= 0")
        self.require("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be >= 0 and < 1")
        self.require("max_grad_norm", self.max_grad_norm > 0, "must be > 0")
        p = self.model_dropout
        self.require("model_dropout", p is None or 0 <= p < 1, "must be null or >= 0 and < 1")
        self.require("device", self.device in DEVICES, f"use one of {', '.join(DEVICES)}")
        self.require("precision", self.precision in PRECISIONS, f"use {', '.join(PRECISIONS)}")
        self.require("bucket_chunk", 1 <= self.bucket_chunk <= MAX_BATCH, BATCH_RANGE)
        ok = 1 <= self.processes <= MAX_PROCESSES
        self.require("processes", ok, f"must be an integer from 1 to {MAX_PROCESSES}")
        self.require("checkpoint_every", self.checkpoint_every >= 1, "must be >= 1")


@dataclass(frozen=True)
class EvaluateConfig(Section):
    SECTION = "evaluate"
    batch_size: int = 128
    precision: str = "fp32"
    bootstrap_resamples: int = 2000

    def check(self) -> None:
        self.require("batch_size", 1 <= self.batch_size <= MAX_BATCH, BATCH_RANGE)
        n = self.bootstrap_resamples
        self.require("bootstrap_resamples", 1000 <= n <= 100_000, "must be from 1000 to 100000")
        self.require("precision", self.precision in PRECISIONS, f"use {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class GateConfig(Section):
    """How far each metric may move the wrong way before `lora-sst2 gate` fails."""

    SECTION = "gate"
    max_drop: dict[str, float] = field(
        default_factory=lambda: {"test.accuracy": 0.005, "test.f1": 0.01}
    )
    alpha: float = 0.05
    require_significance: bool = True

    def check(self) -> None:
        bad = [k for k, v in self.max_drop.items() if v < 0]
        self.require("max_drop", not bad, f"thresholds must be >= 0 (see {', '.join(bad)})")
        self.require("alpha", 0 < self.alpha < 1, "must be > 0 and < 1")


# The default search of `lora-sst2 tune` (docs/tune.md): what moved results on new data.
TUNE_SPACE = {
    "train.lr": {"log": [0.0005, 0.005]},
    "train.model_dropout": {"choices": [0.0, None]},
    "lora.r": {"choices": [4, 8, 16]},
    "lora.dropout": {"linear": [0.0, 0.3]},
    "train.train_pooler": {"choices": [False, True]},
}
TUNE_LONG_TEXTS = {  # joins the space past 5% of texts cut
    "model.max_length": {"choices": [128, 256]},
    "model.truncation": {"choices": ["head", "head+tail"]},
}
OBJECTIVES = ("auto", "val.accuracy", "val.macro_f1")  # auto: macro-F1 past two classes


@dataclass(frozen=True)
class TuneConfig(Section):
    """`lora-sst2 tune`'s budget and search space; the space's entries are checked against
    the params they vary by lora_core/tune_space.py, which tune alone imports."""

    SECTION = "tune"
    trials: int = 8  # complete trials in the study, trial 0 (params.yaml as it stands) included
    objective: str = "auto"
    seed: int = 0
    prune: bool = True  # stop a trial whose first epoch is below the median of the completed
    space: dict = field(default_factory=lambda: copy.deepcopy(TUNE_SPACE))
    long_texts: dict = field(default_factory=lambda: copy.deepcopy(TUNE_LONG_TEXTS))

    def check(self) -> None:
        self.require("trials", 1 <= self.trials <= 10_000, "must be from 1 to 10000")
        self.require("objective", self.objective in OBJECTIVES, f"use {', '.join(OBJECTIVES)}")


DROPOUT_MODES = ("element", "token")  # lora.dropout_mode: on x (PEFT's), or per token on A x
SPLIT_KINDS = ("auto", "random", "sentence")  # data.split: auto picks sentence for SST-2
MODES = ("lora", "head", "full")  # train.mode: what trains
DEVICES = ("auto", "cpu", "cuda")
TRUNCATIONS = ("head", "head+tail")  # model.truncation: what a long single text keeps
ATTENTIONS = ("auto", "eager", "sdpa")  # model.attention: transformers' attn_implementation
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODEL_NAME = Rule(
    lambda name: bool(name.strip()) and not has_control(name),
    "must be a hub id or a folder name, with no control characters",
)
LENGTH = Rule(lambda n: 2 <= n <= MAX_LENGTH, f"must be an integer from 2 to {MAX_LENGTH}")
MODE = Rule(lambda mode: mode in MODES, f"use {', '.join(MODES)}")
CLASS_NAMES = Rule(
    lambda names: len(names) >= 2 and distinct_names(names),
    "must list two or more distinct class names",
)
TEXT_COLUMNS = Rule(
    lambda columns: len(columns) in (1, 2) and distinct_names(columns),
    "must list one or two distinct column names",
)
SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "lora": LoraConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "gate": GateConfig,
    "tune": TuneConfig,
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
    tune: TuneConfig = field(default_factory=TuneConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The params as params.yaml spells them: sections of plain values, lists for tuples."""

        def plain(value: Any) -> Any:
            return list(value) if isinstance(value, tuple) else value

        return {
            name: {f.name: plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
            for name, section in ((name, getattr(self, name)) for name in SECTIONS)
        }

    def select(self, keys: typing.Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of ``keys`` (a section, or ``section.key``, as dvc.yaml names params),
        nested as in params.yaml."""
        raw, chosen = self.to_dict(), {}
        for key in keys:
            section, _, name = key.partition(".")
            values = {name: raw[section][name]} if name else raw[section]
            chosen.setdefault(section, {}).update(values)
        return chosen

    @classmethod
    def from_dict(cls, raw: Any, source: str = "params.yaml") -> Params:
        """Build and validate from the parsed YAML mapping; errors start with ``source``."""
        with errors_from(source):
            check_keys(raw, SECTIONS, SECTIONS, "section", "sections")
            return cls(**{name: build(kind, name, raw[name]) for name, kind in SECTIONS.items()})


def build(kind: type[Section], name: str, raw: Any) -> Section:
    """One section from its raw mapping: unknown keys and bad values name ``name.key``."""
    check_keys(raw, [f.name for f in dataclasses.fields(kind)], (), section=name)
    return kind(**raw)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, expected the params file")
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    return Params.from_dict(load_yaml(path), source=str(path))
