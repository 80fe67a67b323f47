"""The `lora-sst2` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lora_core.errors import LoraSst2Error, guarded
from lora_core.files import PROJECT_FILE, find_project_root
from lora_core.pretrained import BASE_DIR

# Each module adds its sub-commands with register(subparsers); each sets `run=` a function
# that takes the parsed args and returns the exit status.
COMMAND_MODULES = tuple(
    f"lora_core.commands.{name}"
    for name in ("predict", "export", "info", "fresh", "gate", "report", "compare", "tune")
)


def package_version() -> str:
    """The installed lora-sst2 distribution's version ('unknown' when not installed)."""
    try:
        return version("lora-sst2")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-sst2",
        description="LoRA fine-tuning of BERT-family text classifiers; SST-2 by default.",
    )
    parser.add_argument("--version", action="version", version=f"lora-sst2 {package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _project_of(args: argparse.Namespace) -> Path | None:
    """The project of the working directory; outside any, the one holding --params or
    --adapter (the base model mirror and the scores belong to that project)."""
    starts = [Path.cwd()]
    if getattr(args, "params", None) is not None:
        starts.append(Path(args.params).resolve().parent)
    if args.adapter is not None:
        starts.append(Path(args.adapter))
    return next(filter(None, map(find_project_root, starts)), None)


def apply_project_defaults(args: argparse.Namespace) -> None:
    """Fill the options a command left unset with the project root's folders.

    A command lists them in ``project_defaults`` ({option: path under the root}). Paths the
    user typed stay relative to the working directory; the defaults become paths to the
    root's files, shown relative to the working directory (``../models`` from metrics/).
    Sets ``project_root`` (None outside a project), ``base_dir`` and ``defaulted``.
    """
    root = _project_of(args)
    if root is None and args.adapter is None:
        raise LoraSst2Error(
            f"no lora-sst2 project ({PROJECT_FILE}) was found in {Path.cwd()} or any folder "
            "above it: run from inside the project or give --adapter"
        )
    base = root if root is not None else Path.cwd()  # outside a project: as before
    args.defaulted = set()
    for option, path in args.project_defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, os.path.relpath(base / path))
            args.defaulted.add(option)
    args.project_root, args.base_dir = root, os.path.relpath(base / BASE_DIR)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed sub-command, first giving project options their defaults."""
    if getattr(args, "project_defaults", None) is not None:
        apply_project_defaults(args)
    return args.run(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one sub-command; user errors print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return guarded("lora-sst2: ", lambda: run_command(args))
    except BrokenPipeError:  # `lora-sst2 info | head`: the reader left early, as it may
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
