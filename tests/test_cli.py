"""The `lora-sst2` entry point."""

import os
import subprocess
import sys
from pathlib import Path

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
