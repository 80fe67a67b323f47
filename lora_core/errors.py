"""The one exception type users see: a problem they can fix, said in one line."""


class LoraSst2Error(Exception):
    """An error caused by input the user controls (params, data, model, adapter, CLI args).

    Stages and the CLI print its message on one line to stderr and exit with status 2,
    instead of a traceback.
    """
