"""The import graph of lora_core: no circle, counting lazy and type-only imports too; and
evaluate-only code (plots, the bootstrap) out of train's imports, so an edit to it leaves
train up to date."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run

PACKAGE = ROOT / "lora_core"


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name of a file under ``root`` (a package is its __init__)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every lora_core module that ``path`` imports anywhere: at the top, in a function,
    under ``if TYPE_CHECKING:``. ``from lora_core import x`` names the submodule x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found & modules


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for every module under ``package``."""
    paths = {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_reports_a_lazy_circle(tmp_path):
    package = tmp_path / "lora_core"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from lora_core.b import g\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lora_core import a\n"
    )
    (package / "c.py").write_text("import lora_core.a\n")
    graph = import_graph(package)
    assert graph["lora_core.c"] == {"lora_core.a"}
    assert find_cycle(graph) == ["lora_core.a", "lora_core.b", "lora_core.a"]
    graph["lora_core.b"] = set()
    assert find_cycle(graph) is None


def test_lora_core_has_no_import_circle():
    graph = import_graph()
    assert "lora_core.loop" in graph and "lora_core.commands.cli" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def closure(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    """Every module reachable from ``roots`` along the graph's imports, the roots included."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_train_never_imports_plots_or_the_bootstrap_even_lazily():
    graph = import_graph()
    script = imported_modules(ROOT / "stages/train.py", set(graph))
    reached = closure(graph, script)
    assert {"lora_core.loop", "lora_core.metrics", "lora_core.train_outputs"} <= reached
    assert not reached & {
        "lora_core.plots",
        "lora_core.stats",
        "lora_core.scores",
        "lora_core.eval_outputs",
    }
    evaluate = closure(graph, imported_modules(ROOT / "stages/evaluate.py", set(graph)))
    assert {"lora_core.plots", "lora_core.stats"} <= evaluate


def test_a_plot_or_bootstrap_edit_reruns_evaluate_and_leaves_train_up_to_date(
    built_project, tmp_path
):
    project = tmp_path / "project"
    shutil.copytree(built_project, project, symlinks=True)
    for name in ("plots.py", "stats.py"):
        with (project / "lora_core" / name).open("a", encoding="utf-8") as f:
            f.write("# an edit that changes no number\n")
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    assert "train" not in status and "tokenize" not in status
    changed = [entry["changed deps"] for entry in status["evaluate"] if "changed deps" in entry]
    assert changed == [{"lora_core/plots.py": "modified", "lora_core/stats.py": "modified"}]
