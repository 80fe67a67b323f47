"""The `lora-sst2` entry point."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.commands import cli

FIXTURE = Path(__file__).parent / "fixtures/exp_show.json"


def test_cli_exits_quietly_when_its_reader_is_gone(tmp_path):
    # `lora-sst2 info | head -3`: head exits first; a traceback would be noise.
    read, write = os.pipe()
    os.close(read)
    command = [sys.executable, "-m", "lora_core.commands.cli", "report", "--input", str(FIXTURE)]
    proc = subprocess.run(
        [*command, "--png", str(tmp_path / "x.png")],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_version_prints_the_package_version(capsys):
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    (version,) = re.findall(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"lora-sst2 {version}\n"


def test_the_parser_imports_neither_torch_nor_transformers():
    """`lora-sst2 --help`, check-fresh, gate and compare need no model: the model commands
    import torch when they run (it took 1.0 s of --help's 1.5 s)."""
    code = (
        "import sys; from lora_core.commands import cli; cli.build_parser(); "
        "print(sorted({'torch', 'transformers', 'sklearn'} & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[]\n"


def _subcommand(name: str) -> argparse.ArgumentParser:
    subparsers = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return subparsers.choices[name]


@pytest.mark.parametrize("command", ["predict", "export", "info"])
def test_every_option_of_the_model_commands_has_help(command):
    actions = _subcommand(command)._actions
    assert len(actions) >= 3  # --help and at least --adapter and one more
    missing = [a.option_strings or a.dest for a in actions if not a.help]
    assert missing == []


def test_project_defaults_are_in_the_help():
    helps = {
        (command, a.dest): a.help
        for command in ("predict", "export", "info")
        for a in _subcommand(command)._actions
    }
    assert helps[("export", "adapter")] == (
        "the adapter to export: a folder with adapter.* or PEFT's files "
        "(default: the project's models/)"
    )
    assert helps[("info", "adapter")] == (
        "folder with adapter.* or PEFT's files (default: the project's models/)"
    )
    assert helps[("info", "metrics")] == (
        "folder with the eval.json to show (default: the project's metrics/, shown only for "
        "the project's models/ adapter)"
    )
