"""The one exception type users see: a problem they can fix, said in one line."""

import functools
import sys
from collections.abc import Callable


class LoraSst2Error(Exception):
    """An error caused by input the user controls (params, data, model, adapter, CLI args).

    Stages and the CLI print its message on one line to stderr and exit with status 2,
    instead of a traceback.
    """


def exit_on_user_error(main: Callable[[list[str] | None], None]) -> Callable[..., int]:
    """Wrap a stage's ``main``: a LoraSst2Error prints one line to stderr and returns 2."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            main(argv)
        except LoraSst2Error as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0

    return wrapper
