"""Hostile inputs: every stage and CLI command against every damaged file it reads.

For each (command, file, damage) pair: exit status 2, one line on stderr, no traceback,
and every other file of the project byte-identical afterwards, with no temporary left.
A read-only output folder is tested the same way, as a user without root would meet it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.commands import cli
from stages import baseline, evaluate, fetch, prepare, tokenize, train
from tests.conftest import snapshot, work_copy

MODEL = "models/base/sentence-transformers/all-MiniLM-L6-v2"
ADAPTER = ("models/adapter.json", "models/adapter.safetensors")

# command -> (how to run it, the files it reads)
COMMANDS = {
    "fetch": ((fetch, []), ("params.yaml",)),
    "prepare": ((prepare, []), ("params.yaml", "data/raw/sst2/train.tsv", "data/raw/sst2/dev.tsv")),
    "tokenize": (
        (tokenize, []),
        (
            "params.yaml",
            "data/prepared/val.jsonl",
            "data/prepared/summary.json",
            f"{MODEL}/config.json",
        ),
    ),
    "train": (
        (train, ["--no-progress"]),
        (
            "params.yaml",
            "data/tokenized/train.safetensors",
            "data/tokenized/task.json",
            f"{MODEL}/model.safetensors",
        ),
    ),
    "evaluate": ((evaluate, []), ("params.yaml", *ADAPTER, "data/tokenized/test.safetensors")),
    "predict": ((cli, ["predict", "good film"]), ("params.yaml", *ADAPTER)),
    "export": ((cli, ["export", "--merged", "../exported"]), ADAPTER),
    "info": ((cli, ["info"]), (*ADAPTER, "metrics/eval.json")),
    "check-fresh": ((cli, ["check-fresh"]), ("params.yaml", "dvc.lock")),
    "gate": ((cli, ["gate", "--base", "HEAD"]), ("params.yaml", "dvc.lock")),
    "report": ((cli, ["report", "--input", "exp.json", "--png", "x.png"]), ("exp.json",)),
    "baseline": (
        (baseline, []),
        ("params.yaml", "data/prepared/test.jsonl", "data/prepared/summary.json"),
    ),
    "compare": (
        (cli, ["compare"]),
        ("metrics/baseline.json", "metrics/predictions/baseline_test.csv", "metrics/eval.json"),
    ),
}
EXP_SHOW = Path(__file__).parent / "fixtures/exp_show.json"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _to_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("a folder where a file belongs\n")


DAMAGES = {
    "truncated": _truncate,
    "empty": lambda path: path.write_bytes(b""),
    "wrong type": lambda path: path.write_bytes(b"42\n"),  # parses as a number, not a table
    "folder": _to_folder,
}
PAIRS = [(c, f, d) for c, (_, files) in COMMANDS.items() for f in files for d in DAMAGES]


@pytest.fixture
def project(committed, tmp_path, monkeypatch):
    copy = work_copy(committed, tmp_path, monkeypatch)
    shutil.copy2(EXP_SHOW, copy / "exp.json")  # what `report --input` reads
    return copy


VOLATILE = ("project/.dvc/tmp/", "project/.git/index")  # dvc's and git's own bookkeeping


def check_one_line_failure(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and "error: " in err, err


@pytest.mark.parametrize(("command", "file", "damage"), PAIRS, ids=map(" ".join, PAIRS))
def test_hostile_input_one_line_and_nothing_changed(project, capsys, command, file, damage):
    (runner, argv), _ = COMMANDS[command]
    DAMAGES[damage](project / file)
    before = snapshot(project.parent, VOLATILE)
    code = runner.main(argv)
    check_one_line_failure(code, capsys.readouterr().err)
    assert snapshot(project.parent, VOLATILE) == before
    assert not list(project.parent.rglob("*.tmp"))


# command -> (argv for a subprocess, the output folder made read-only)
WRITERS = {
    "fetch": (["-m", "stages.fetch"], "data"),
    "prepare": (["-m", "stages.prepare"], "data"),
    "tokenize": (["-m", "stages.tokenize"], "data"),
    "train": (["-m", "stages.train", "--no-progress"], "metrics"),
    "evaluate": (["-m", "stages.evaluate"], "metrics"),
    "export": (["-m", "lora_core.commands.cli", "export", "--merged", "out/merged"], "out"),
    "report": (["-m", "lora_core.commands.cli", "report", "--png", "out/x.png"], "out"),
    "baseline": (["-m", "stages.baseline"], "metrics"),
}


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` as a user whom folder permissions bind: root ignores them."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: a read-only folder cannot be made")
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]


@pytest.mark.parametrize("command", list(WRITERS))
def test_hostile_read_only_output_folder(project, command):
    argv, folder = WRITERS[command]
    (project / folder).mkdir(exist_ok=True)
    if command == "report":
        argv = [*argv, "--input", "exp.json"]
    before = snapshot(project.parent, VOLATILE)
    (project / folder).chmod(0o555)
    try:
        proc = subprocess.run(
            unprivileged([sys.executable, *argv]), cwd=project, capture_output=True, text=True
        )
    finally:
        (project / folder).chmod(0o755)
    if proc.returncode != 0 and "unshare:" in proc.stderr:
        pytest.skip(f"user namespaces are not available here: {proc.stderr.strip()}")
    check_one_line_failure(proc.returncode, proc.stderr)
    assert f"{folder}/" in proc.stderr and "Permission denied -- make it readable" in proc.stderr
    assert snapshot(project.parent, VOLATILE) == before
