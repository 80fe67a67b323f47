"""The README's promises: at most 200 lines, a Python snippet that runs as written, and the
params table of docs/params.md equal to the code's defaults."""

import re
import shutil

import yaml

from lora_core.config import Params
from tests.conftest import ROOT, lora

README = ROOT / "README.md"
PARAMS_DOC = ROOT / "docs/params.md"
TEXTS = ["a gorgeous , witty film", "a mess"]  # the README snippet's


def python_blocks(text: str) -> list[str]:
    """The code of every ```python block in a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)


def params_table(text: str) -> dict[str, object]:
    """``{section.key: default}`` from the table rows '| `key` | `default` | meaning |'; each
    default is a YAML value in backticks."""
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| `([^`]*)` \|", text, flags=re.M)
    return {key: yaml.safe_load(default) for key, default in rows}


def test_readme_is_at_most_200_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_readme_python_snippet_runs_in_the_built_project(
    built_project, tmp_path, monkeypatch, capsys
):
    (snippet,) = python_blocks(README.read_text(encoding="utf-8"))
    project = tmp_path / "project"
    shutil.copytree(built_project, project, symlinks=True)
    monkeypatch.chdir(project)
    names: dict = {}
    exec(compile(snippet, "README.md", "exec"), names)
    rows = names["rows"]
    assert [row["text"] for row in rows] == TEXTS
    for row in rows:
        assert set(row) == {"text", "label", "score", "probabilities"}
        probabilities = row["probabilities"]
        assert set(probabilities) == {"negative", "positive"}
        assert row["score"] == probabilities[row["label"]] == max(probabilities.values())
        assert abs(sum(probabilities.values()) - 1) < 1e-6
    printed = capsys.readouterr().out  # the snippet's print: what the CLI says, to 4 digits
    code, out, _ = lora(monkeypatch, capsys, project, "predict", *TEXTS)
    assert code == 0
    cli = [line.split("\t")[:2] for line in out.splitlines()]
    assert printed == f"{[(label, round(float(score), 4)) for label, score in cli]}\n"


def test_params_doc_table_holds_every_key_with_the_code_default():
    table = params_table(PARAMS_DOC.read_text(encoding="utf-8"))
    defaults = {
        f"{section}.{key}": value
        for section, values in Params().to_dict().items()
        for key, value in values.items()
    }
    assert sorted(table) == sorted(defaults)
    for key, value in defaults.items():
        assert (key, type(table[key]), table[key]) == (key, type(value), value)


def test_readme_names_every_params_key():
    text = README.read_text(encoding="utf-8")
    keys = [f"{s}.{k}" for s, values in Params().to_dict().items() for k in values]
    assert [key for key in keys if f"`{key}`" not in text] == []
