"""The one exception type users see: a problem they can fix, said in one line."""

import functools
import signal
import sys
from collections.abc import Callable


class LoraSst2Error(Exception):
    """An error caused by input the user controls (params, data, model, adapter, CLI args).

    Stages and the CLI print its message on one line to stderr and exit with status 2,
    instead of a traceback.
    """


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that every ``finally`` cleans up."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def guarded(prefix: str, run: Callable[[], int | None]) -> int:
    """Run ``run``: a user error prints one line and gives 2; SIGINT 130, SIGTERM 143.

    Outputs are written to temporary names and renamed at the end, so an error or a signal
    leaves the earlier outputs exactly as they were.
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run() or 0
    except LoraSst2Error as err:
        print(f"{prefix}error: {err}", file=sys.stderr)
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
