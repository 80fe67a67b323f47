"""The tune search space from params.yaml's ``tune:`` section, validated against Params.

Each entry is a params key (``section.key``) with one kind of range: ``{log: [low, high]}``,
``{linear: [low, high]}`` or ``{choices: [a, b, ...]}``. Every value the space can give is
checked by the param's own validation (Params), so a trial never starts with a value the
pipeline would refuse; a bad entry is one ConfigError line naming ``tune.<group>.<key>``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import optuna

from lora_core.config import Params, TuneConfig
from lora_core.errors import ConfigError, is_number, shown

KINDS = ("log", "linear", "choices")


@dataclass(frozen=True)
class Dimension:
    """One params key the search varies, and how."""

    key: str  # section.key, as `dvc exp run -S` names it
    kind: str  # log | linear | choices
    values: tuple  # (low, high) for a range, the choices otherwise
    integer: bool = False  # the param is an integer: its range gives integers

    def suggest(self, trial: optuna.Trial) -> Any:
        """This dimension's value for ``trial`` (Optuna's sampler chooses)."""
        if self.kind == "choices":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.integer:
            return trial.suggest_int(self.key, low, high, log=self.kind == "log")
        return trial.suggest_float(self.key, low, high, log=self.kind == "log")

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value this dimension can give (trial 0's defaults)."""
        if self.kind == "choices":
            return any(type(value) is type(c) and value == c for c in self.values)
        return is_number(value) and self.values[0] <= value <= self.values[1]


def _field_hint(key: str) -> Any:
    """The annotation of params key ``section.key``; an unknown key is a ConfigError."""
    section, _, name = key.partition(".")
    kinds = {f.name: f.type for f in dataclasses.fields(Params)}
    if section not in kinds or section == "tune":
        raise ConfigError("is not a params key (section.key); tune cannot vary the tune section")
    hints = typing.get_type_hints(typing.get_type_hints(Params)[section])
    if name not in hints:
        raise ConfigError(f"is not a params key; {section} has {', '.join(sorted(hints))}")
    return hints[name]


def _check_value(params: Params, key: str, value: Any) -> None:
    """The param's own validation of ``key = value``: its message, without the file name."""
    raw = params.to_dict()
    section, _, name = key.partition(".")
    raw[section][name] = value
    try:
        Params.from_dict(raw, source="")
    except ConfigError as err:
        why = str(err).removeprefix(": ")
        raise ConfigError(f"{shown(value)} is refused: {why}") from None


def _range(kind: str, values: Any, hint: Any) -> tuple[tuple, bool]:
    """(low, high) and whether they are integers, or a ConfigError saying what is needed."""
    numbers = isinstance(values, list) and len(values) == 2 and all(map(is_number, values))
    if not numbers:
        raise ConfigError(f"a {kind} range is [low, high], two numbers, got {shown(values)}")
    low, high = values
    if kind == "log" and not 0 < low < high:
        raise ConfigError(f"a log range needs 0 < low < high, got {shown(values)}")
    if not low < high:
        raise ConfigError(f"a linear range needs low < high, got {shown(values)}")
    integer = int in (hint, *typing.get_args(hint)) and float not in (hint, *typing.get_args(hint))
    if integer and not all(type(v) is int for v in values):
        raise ConfigError(f"the param is an integer: its range needs integers, got {shown(values)}")
    if not integer and float not in (hint, *typing.get_args(hint)):
        raise ConfigError("the param is not a number: give it choices")
    return (low, high), integer


def dimension(params: Params, key: str, spec: Any) -> Dimension:
    """One validated entry of the space; errors say what is wrong (the caller names the key)."""
    hint = _field_hint(key)
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        kinds = "{log: [low, high]}, {linear: [low, high]} or {choices: [...]}"
        raise ConfigError(f"must be {kinds}, got {shown(spec)}")
    ((kind, values),) = spec.items()
    if kind == "choices":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"choices must be a non-empty list, got {shown(values)}")
        for value in values:
            _check_value(params, key, value)
        return Dimension(key, kind, tuple(values))
    bounds, integer = _range(kind, values, hint)
    for value in bounds:
        _check_value(params, key, value)
    return Dimension(key, kind, bounds, integer)


def current(params: Params, key: str) -> Any:
    """The value of params key ``section.key`` in ``params``, as params.yaml spells it."""
    section, _, name = key.partition(".")
    return params.to_dict()[section][name]


def parse_space(params: Params, long_texts: bool) -> tuple[Dimension, ...]:
    """The search space of ``params.tune``: ``space``, plus ``long_texts`` when tokenize
    reported long texts cut. A bad entry is one line: ``tune.<group>.<key>: why``."""
    cfg: TuneConfig = params.tune
    dimensions: dict[str, Dimension] = {}
    for group, entries in (("space", cfg.space), ("long_texts", cfg.long_texts)):
        for key, spec in entries.items():  # long_texts is checked even when it is not used
            try:
                found = dimension(params, key, spec)
            except ConfigError as err:
                raise ConfigError(f"tune.{group}.{key}: {err}", key=f"tune.{group}.{key}") from None
            if group == "space" or long_texts:
                dimensions[key] = found
    return tuple(dimensions.values())
