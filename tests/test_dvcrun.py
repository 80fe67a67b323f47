"""dvc_json and run: JSON in, one-line errors out."""

import pytest

from lora_core.commands.dvcrun import dvc_json, run
from lora_core.errors import LoraSst2Error


def test_dvc_json_parses_dvc_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["git", "init", "-q"], "git init")
    run(["dvc", "init", "-q"], "dvc init")
    assert dvc_json("status", "--json") == {}


def test_dvc_json_failure_is_one_line_naming_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a DVC repository
    with pytest.raises(LoraSst2Error) as info:
        dvc_json("status", "--json")
    message = str(info.value)
    assert message.startswith("`dvc status --json` failed: ") and "\n" not in message
    assert "not inside of a DVC repository" in message


def test_dvc_json_refuses_output_that_is_not_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoraSst2Error, match=r"^`dvc version` did not print JSON: "):
        dvc_json("version")


def test_run_names_a_missing_program():
    with pytest.raises(LoraSst2Error, match=r"^`frobnicate --x` failed: no-such-program-xyz not"):
        run(["no-such-program-xyz", "--x"], "frobnicate --x")
