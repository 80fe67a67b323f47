"""The `lora-sst2` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lora_core.errors import guarded

# Each module adds its sub-commands with register(subparsers); each sets `run=` a function
# that takes the parsed args and returns the exit status.
COMMAND_MODULES = tuple(
    f"lora_core.commands.{name}"
    for name in ("predict", "export", "info", "fresh", "gate", "report")
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-sst2", description="LoRA fine-tuning of BERT on SST-2."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one sub-command; user errors print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return guarded("lora-sst2: ", lambda: args.run(args))
    except BrokenPipeError:  # `lora-sst2 info | head`: the reader left early, as it may
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
