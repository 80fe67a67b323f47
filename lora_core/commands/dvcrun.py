"""Subprocesses for check-fresh, gate and report: run a command, or run dvc and read its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from lora_core.errors import LoraSst2Error


def run(cmd: list[str], shown: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` capturing text output; a missing program is a LoraSst2Error naming ``shown``."""
    env = {"DVC_NO_ANALYTICS": "1", **os.environ}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)
    except FileNotFoundError:
        raise LoraSst2Error(f"`{shown}` failed: {cmd[0]} not found") from None


def dvc_json(*args: str) -> Any:
    """Run `dvc ARGS` and parse its JSON output; a failure is one LoraSst2Error line."""
    shown = " ".join(["dvc", *args])
    proc = run([sys.executable, "-m", "dvc", *args], shown)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR: ")] or lines
    if proc.returncode != 0:  # DVC ends with a support banner: its ERROR line says why
        why = errors[-1].removeprefix("ERROR: ") if errors else f"exit {proc.returncode}"
        raise LoraSst2Error(f"`{shown}` failed: {why}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise LoraSst2Error(f"`{shown}` did not print JSON: {proc.stdout[:200]!r}") from None
