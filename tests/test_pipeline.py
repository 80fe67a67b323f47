"""End to end: the DVC pipeline on a tiny model and tiny data, offline."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lora_core.config import TRAIN_READS, load_params
from tests.conftest import ROOT, clone, first_repro, run, set_params, snapshot
from tests.tiny import write_tiny_hub, write_tiny_model

STAGES = ("prepare", "tokenize", "train", "evaluate", "baseline")


def _ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def test_pipeline_repro_caches_and_experiments(built_project, tmp_path):
    assert _ran(first_repro(built_project)) == list(STAGES)
    tiny_project = _copy(built_project, tmp_path)
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
        "accuracy_ci95_low",
        "accuracy_ci95_high",
        "f1_ci95_low",
        "f1_ci95_high",
        "macro_f1",
        "macro_f1_ci95_low",
        "macro_f1_ci95_high",
        "per_class",
    }
    assert set(metrics["test"]["per_class"]) == {"negative", "positive"}
    low, high = metrics["test"]["accuracy_ci95_low"], metrics["test"]["accuracy_ci95_high"]
    assert low <= metrics["test"]["accuracy"] <= high
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
    assert lines[0].startswith("error: no train file in data/raw/sst2/, and nyu-mll/glue/sst2")
    assert lines[0].endswith("or GLUE's SST-2 TSVs (README 'Offline')")
    assert not (tiny_project / "data/prepared").exists()
    assert [p.name for p in (tiny_project / "data").iterdir()] == ["raw"]


def _hashes(project: Path, names) -> dict[str, str]:
    return {name: hashlib.sha256((project / name).read_bytes()).hexdigest() for name in names}


RESULTS = ("models/adapter.safetensors", "models/adapter.json", "metrics/eval.json")


def test_fresh_clone_repro_downloads_the_raw_data_then_reproduces_the_commit(committed, tmp_path):
    # A fresh clone has no data/raw/sst2 (git-ignored): the fetch stage downloads it before
    # DVC looks for it as prepare's dependency. The "hub" is a local dataset folder here.
    hub = write_tiny_hub(tmp_path / "hub")
    project = clone(committed, tmp_path / "clone")
    assert not (project / "data/raw").exists()
    write_tiny_model(project / "models/base/sentence-transformers/all-MiniLM-L6-v2")  # Offline
    # another data.dir than the default, which the fresh clone lacks as well
    set_params(project, {"data": {"source": str(hub), "dir": "data/raw/glue"}})
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(["dvc", "repro"], cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"downloading {hub}/sst2 into data/raw/glue/" in proc.stdout
    # train's outputs come out byte-identical to the commit's, so evaluate is up to date
    # (the baseline re-runs: the prepared folder's summary names the new raw files)
    assert _ran(proc.stdout) == ["prepare", "tokenize", "train", "baseline"]
    # JSON Lines with the hub's class names: the same rows as the mirror the commit used
    assert sorted(p.name for p in (project / "data/raw/glue").iterdir()) == [
        "train.jsonl",
        "validation.jsonl",
    ]
    for split in ("train", "val", "test"):
        name = f"data/prepared/{split}.jsonl"
        assert (project / name).read_bytes() == (committed / name).read_bytes()
    assert _hashes(project, RESULTS) == _hashes(committed, RESULTS)


def test_fresh_clone_repro_offline_prints_the_one_line_and_writes_nothing(committed, tmp_path):
    project = clone(committed, tmp_path / "clone")
    before = snapshot(project, skip=(".dvc/tmp",))
    proc = run(["dvc", "repro"], project, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1
    assert ours[0].startswith("error: no train file in data/raw/sst2/, and nyu-mll/glue/sst2")
    assert ours[0].endswith("or GLUE's SST-2 TSVs (README 'Offline')")
    assert "failed to reproduce 'fetch'" in proc.stderr
    assert snapshot(project, skip=(".dvc/tmp",)) == before


def test_a_bad_param_stops_repro_before_any_output_is_removed(built_project, tmp_path):
    project = _copy(built_project, tmp_path)
    outputs = ("models", "metrics", "data/prepared", "data/tokenized", "data/fetch.json")
    before = snapshot(project, skip=(".dvc", ".git", "params.yaml", "data/raw"))
    set_params(project, {"lora": {"r": 0}})
    proc = run(["dvc", "repro"], project, check=False)
    assert proc.returncode != 0
    assert "error: params.yaml: lora.r = 0 is not allowed" in proc.stderr
    assert _ran(proc.stdout) == []
    after = snapshot(project, skip=(".dvc", ".git", "params.yaml", "data/raw"))
    assert after == before and all(any(k.startswith(o) for k in after) for o in outputs)


def _copy(built_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(built_project, project, symlinks=True)
    return project


def _files(project, names):
    return {name: (project / name).read_bytes() for name in names}


TIMING = ("train_seconds", "examples_per_second", "peak_memory_mb")


@pytest.mark.trained
def test_pipeline_rerun_is_bit_identical(built_project, tmp_path):
    project = _copy(built_project, tmp_path)
    run(["dvc", "repro", "--force", "-q"], project)
    same = ("metrics/eval.json", "models/adapter.safetensors", "models/adapter.json")
    assert _files(project, same) == _files(built_project, same)
    curves = "metrics/train/plots/metrics"
    for path in (
        "metrics/plots/confusion.json",
        "metrics/plots/roc.json",
        f"{curves}/val/loss.tsv",
    ):
        assert (project / path).read_bytes() == (built_project / path).read_bytes(), path
    old, new = (
        json.loads((p / "metrics/train.json").read_text()) for p in (built_project, project)
    )
    assert {k: v for k, v in new.items() if k not in TIMING} == {
        k: v for k, v in old.items() if k not in TIMING
    }


@pytest.mark.parametrize(
    ("sig", "status", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_pipeline_signal_during_training_leaves_outputs_then_repro_completes(
    built_project, tmp_path, sig, status, word
):
    project = _copy(built_project, tmp_path)
    outputs = ("models/adapter.safetensors", "models/adapter.json", "metrics/train.json")
    before = _files(project, outputs)
    set_params(project, {"train": {"epochs": 500}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train"],
        cwd=project,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith("epoch 1: val accuracy")  # training is under way
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert err.rstrip().splitlines()[-1] == f"error: {word}; earlier outputs are unchanged"
    assert _files(project, outputs) == before
    assert not list(project.rglob("*.tmp"))
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "repro", "-q"], project)
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    assert status == {"fetch": ["always changed"]}  # fetch re-checks params at every run


@pytest.mark.parametrize("stage", ("fetch", *STAGES))
def test_dvc_yaml_lists_every_library_module_a_stage_imports(stage):
    code = f"import sys, stages.{stage}; print(*sorted(sys.modules))"
    modules = run([sys.executable, "-c", code], ROOT).stdout.split()
    imported = {m.replace(".", "/") for m in modules if m.split(".")[0] == "lora_core"}
    imported = {f"{m}/__init__.py" if m == "lora_core" else f"{m}.py" for m in imported}
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    deps = {d for d in spec["deps"] if d.startswith("lora_core")}
    assert imported == deps
    assert f"stages/{stage}.py" in spec["deps"]


@pytest.mark.parametrize(
    "module", ["stages.fetch", "stages.prepare", "stages.tokenize", "stages.baseline"]
)
def test_the_data_stages_load_no_torch(module):
    # data.py, hub.py, tables.py and tokens.py say "no torch": importing torch takes 1.2 s
    # on the 2-core Xeon, importing stages.fetch 0.17 s, and fetch runs at every `dvc repro`.
    code = f"import sys, {module}; print('torch' in sys.modules)"
    assert run([sys.executable, "-c", code], ROOT).stdout.split() == ["False"]


def test_train_reads_the_params_dvc_yaml_lists_and_dvclive_logs_them(built_project):
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    assert list(TRAIN_READS) == spec["params"]
    logged = yaml.safe_load((built_project / "metrics/train/params.yaml").read_text())
    assert logged == load_params(built_project / "params.yaml").select(TRAIN_READS)
    assert sorted(logged) == ["evaluate", "lora", "model", "train"]


def test_pipeline_lora_edit_reruns_train_and_evaluate_and_command_edit_nothing(
    built_project, tmp_path
):
    project = _copy(built_project, tmp_path)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "reproduced"], project)
    with (project / "lora_core/layer.py").open("a", encoding="utf-8") as f:
        f.write("# an edit to the LoRA layer\n")
    assert _ran(run(["dvc", "repro"], project).stdout) == ["train", "evaluate"]
    for path in sorted((project / "lora_core/commands").glob("*.py")):
        with path.open("a", encoding="utf-8") as f:
            f.write("# an edit to a command\n")
    assert _ran(run(["dvc", "repro"], project).stdout) == []
