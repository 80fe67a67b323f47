"""End to end: the DVC pipeline on a tiny model and tiny data, offline."""

import json
import shutil

from tests.conftest import run

STAGES = ("prepare", "tokenize", "train", "evaluate")


def _ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def test_pipeline_repro_caches_and_experiments(tiny_project):
    first = run(["dvc", "repro"], tiny_project).stdout
    assert _ran(first) == list(STAGES)
    metrics = json.loads((tiny_project / "metrics/eval.json").read_text())
    assert set(metrics) == {"val", "test"}
    assert set(metrics["test"]) == {
        "accuracy",
        "f1",
        "precision",
        "recall",
        "mcc",
        "loss",
        "examples",
    }
    assert metrics["test"]["examples"] == 40

    assert _ran(run(["dvc", "repro"], tiny_project).stdout) == []

    run(["git", "add", "-A"], tiny_project)
    run(["git", "commit", "-qm", "baseline"], tiny_project)
    exp = run(["dvc", "exp", "run", "-S", "lora.r=8"], tiny_project).stdout
    assert _ran(exp) == ["train", "evaluate"]
    adapter = json.loads((tiny_project / "models/adapter.json").read_text())
    assert adapter["lora"]["r"] == 8

    diff = json.loads(run(["dvc", "metrics", "diff", "--all", "--json"], tiny_project).stdout)
    assert "test.accuracy" in diff["metrics/eval.json"]
    params = json.loads(run(["dvc", "params", "diff", "--json"], tiny_project).stdout)
    assert "lora.r" in params["params.yaml"]


def test_pipeline_without_raw_data_offline_fails_cleanly(tiny_project):
    shutil.rmtree(tiny_project / "data/raw/sst2")
    proc = run(["python", "-m", "stages.prepare"], tiny_project, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no data/raw/sst2/train.tsv and dev.tsv, and nyu-mll/glue")
    assert "copy GLUE's SST-2 TSVs into data/raw/sst2/ (README section 'Offline')" in lines[0]
    assert not (tiny_project / "data/prepared").exists()
    assert [p.name for p in (tiny_project / "data").iterdir()] == ["raw"]
