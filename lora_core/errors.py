"""The one exception type users see (a problem they can fix, said in one line), the checks
that name a bad value, and the boundary every stage and command runs inside."""

import errno
import functools
import math
import signal
import sys
import types
import typing
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class LoraSst2Error(Exception):
    """An error caused by input the user controls (params, data, model, adapter, CLI args).

    Stages and the CLI print its message on one line to stderr and exit with status 2,
    instead of a traceback.
    """


class ConfigError(LoraSst2Error):
    """A params.yaml (or adapter.json) value that is missing, mistyped or out of range;
    ``key`` names the refused key when one is."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(LoraSst2Error):
    """Raw or prepared data that is missing or malformed."""


def damaged(path: Any, stage: str, why: str = "") -> DataError:
    """A file that ``stage`` wrote and that no longer reads as it writes it."""
    because = f" ({why})" if why else ""
    return DataError(f"{path} is damaged{because}: run `dvc repro --force {stage}`")


def is_int(value: Any) -> bool:
    """An integer and not a bool (JSON's and YAML's true is a bool, and bools are ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


MAX_SHOWN = 200  # characters of a refused value an error echoes


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut short: a refused value may be a megabyte of text, and an error
    is one readable line (repr escapes control characters, so the line stays one)."""
    return cut(repr(value), limit)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (a tab, a newline, a terminal escape): a
    name that is printed (a class, a column, a model id) holds none."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def fail(section: str, key: str, value: Any, allowed: str) -> None:
    """Refuse ``section.key = value``, saying what is allowed."""
    name = f"{section}.{key}" if section else key
    raise ConfigError(f"{name} = {shown(value)} is not allowed: {allowed}", key=name)


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a parsed YAML/JSON value fits a dataclass field's annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:  # finite: YAML reads 1e400 as inf
        return is_number(value) and math.isfinite(value)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and type_ok(v, float) for k, v in value.items()
        )
    return isinstance(value, hint)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def describe_type(hint: Any) -> str:
    """An annotation in words, for "must be ..." messages."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    if typing.get_origin(hint) is dict:
        return "a mapping of metric names to numbers"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


@contextmanager
def errors_from(source: str) -> Iterator[None]:
    """Prefix every ConfigError raised inside with the file it is about."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def check_keys(
    raw: Any, allowed, required, what: str = "key", kind: str = "keys", section: str = ""
) -> None:
    """``raw`` must be a mapping with every ``required`` key and no key outside ``allowed``;
    an unknown key inside ``section`` is named ``section.key``, as params.yaml's are."""
    if not isinstance(raw, dict):
        if section:
            raise ConfigError(f"section {shown(section)} must be a mapping, got {shown(raw)}")
        raise ConfigError(f"expected a mapping of {kind}, got {shown(raw)}")
    for key in raw:
        if key not in allowed:
            plain = isinstance(key, str) and not has_control(key)
            name = shown(key) if not plain else cut(f"{section}.{key}" if section else repr(key))
            raise ConfigError(f"unknown {what} {name}; allowed: {', '.join(sorted(allowed))}")
    missing = [key for key in required if key not in raw]
    if missing:
        raise ConfigError(f"missing {what} {shown(missing[0])}")


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that every ``finally`` cleans up."""


def _terminate(signum, frame) -> None:
    raise Terminated()


_OS_HINTS = {
    errno.EACCES: "make it readable and writable for this user, or choose another path",
    errno.EPERM: "make it readable and writable for this user, or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space",
    errno.ENOENT: "check that the path exists",
    errno.EISDIR: "a folder stands where a file is expected: move it away",
    errno.ENOTDIR: "a file stands where a folder is expected: move it away",
}


def os_error_line(err: OSError) -> str:
    """One line for a failed read or write: the file, the reason, what to do."""
    name = f" {err.filename}" if err.filename else ""
    hint = _OS_HINTS.get(err.errno or 0, "check the path and its permissions")
    return f"cannot use{name}: {err.strerror or err} -- {hint}"


def guarded(prefix: str, run: Callable[[], int | None]) -> int:
    """Run ``run``: a user error or a failed file access prints one line and gives 2;
    SIGINT 130, SIGTERM 143. Anything else is a bug and keeps its traceback.

    Outputs are written to temporary names and renamed at the end, so an error or a signal
    leaves the earlier outputs exactly as they were.
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run() or 0
    except LoraSst2Error as err:
        print(f"{prefix}error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # a reader that left early is the caller's to handle
        raise
    except OSError as err:
        print(f"{prefix}error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}error: interrupted; earlier outputs are unchanged", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prefix}error: terminated; earlier outputs are unchanged", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_on_user_error(main: Callable[[list[str] | None], None]) -> Callable[..., int]:
    """Wrap a stage's ``main`` with ``guarded``; it returns the exit status."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        return guarded("", lambda: main(argv))

    return wrapper
