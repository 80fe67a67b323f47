"""check-fresh: pure decisions, then the CLI on tiny DVC projects."""

from __future__ import annotations

import json
import shutil

from lora_core.commands import fresh
from tests.conftest import clone, lora, run, set_metrics, set_params

HINT = "run `dvc repro`, then commit dvc.lock and metrics/"
# `dvc status --json` in a fresh clone of a reproduced project: only absent data.
CLONE_STATUS = {
    "prepare": [
        {"changed deps": {"data/raw/sst2": "deleted"}},
        {"changed outs": {"data/prepared": "not in cache"}},
    ],
    "evaluate": [{"changed deps": {"models/adapter.json": "deleted"}}],
}
LOCK = {
    "stages": {
        "tokenize": {
            "deps": [{"path": "data/prepared", "hash": "md5", "md5": "a.dir"}],
            "outs": [{"path": "data/tokenized", "hash": "md5", "md5": "b.dir"}],
        },
        "train": {
            "deps": [{"path": "data/tokenized", "hash": "md5", "md5": "b.dir"}],
            "params": {"params.yaml": {"lora": {"r": 4, "alpha": 16}, "train.lr": 0.01}},
        },
    }
}


OUT = {"path": "models/a", "hash": "md5", "md5": "0" * 32, "size": 3}


# --- pure -------------------------------------------------------------------------------------


def test_stale_stages_ignore_absent_data():
    assert fresh.stale_stages(CLONE_STATUS, LOCK, {}) == {}
    assert fresh.format_stale({}) == "fresh: dvc.lock matches params and code"


def test_stale_stages_name_param_leaves_code_outputs_and_command():
    status = {
        "train": [{"changed deps": {"data/tokenized": "deleted", "params.yaml": {"lora": "x"}}}],
        "evaluate": [
            {"changed deps": {"stages/evaluate.py": "modified"}},
            {"changed outs": {"metrics/eval.json": "modified", "metrics/plots": "deleted"}},
            "changed command",
        ],
    }
    current = {"params.yaml": {"lora": {"r": 8, "alpha": 16}}}
    stale = fresh.stale_stages(status, LOCK, current)
    assert stale == {
        "train": ["params changed: lora.r"],
        "evaluate": [
            "command changed",
            "deps changed: stages/evaluate.py",
            "outs changed: metrics/eval.json",
        ],
    }
    assert fresh.format_stale(stale) == (
        "stale: train (params changed: lora.r), evaluate (command changed; deps changed: "
        f"stages/evaluate.py; outs changed: metrics/eval.json) -- {HINT}"
    )


def test_stale_stages_catch_a_lock_whose_upstream_hash_moved():
    lock = json.loads(json.dumps(LOCK))
    lock["stages"]["tokenize"]["outs"][0]["md5"] = "c.dir"  # tokenize re-ran; train did not
    assert fresh.stale_stages(CLONE_STATUS, lock, {}) == {"train": ["deps changed: data/tokenized"]}


def test_param_changes_fall_back_to_the_key_dvc_names():
    locked = {"train.lr": 0.01, "lora": {"r": 4}}
    current = {"train": {"lr": 0.02}, "lora": {"r": 4, "rslora": True}}
    changed = {"train.lr": "modified", "lora": "modified", "data.seed": "new"}
    assert fresh.param_changes(changed, locked, current) == ["train.lr", "lora.rslora", "data.seed"]


# --- the CLI on tiny projects -----------------------------------------------------------------


def test_check_fresh_param_change_fails_until_repro(built_project, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    shutil.copytree(built_project, project, symlinks=True)
    set_params(project, {"evaluate": {"precision": "bf16"}})  # re-runs evaluate only: fast
    assert lora(monkeypatch, capsys, project, "check-fresh") == (
        1,
        f"stale: evaluate (params changed: evaluate.precision) -- {HINT}\n",
        "",
    )
    run(["dvc", "repro", "-q"], project)
    assert lora(monkeypatch, capsys, project, "check-fresh") == (
        0,
        "fresh: dvc.lock matches params and code\n",
        "",
    )


def test_check_fresh_in_a_fresh_clone(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    assert not (project / "data/tokenized").exists()
    assert not (project / "models/adapter.safetensors").exists()
    assert not (project / ".dvc/cache").exists()
    assert lora(monkeypatch, capsys, project, "check-fresh")[:2] == (
        0,
        "fresh: dvc.lock matches params and code\n",
    )
    # Where `dvc repro --dry --allow-missing` crashes: a real change next to absent data.
    set_params(project, {"lora": {"r": 8}})
    with (project / "stages/evaluate.py").open("a") as script:
        script.write("# changed\n")
    assert lora(monkeypatch, capsys, project, "check-fresh")[:2] == (
        1,
        "stale: train (params changed: lora.r), evaluate (deps changed: stages/evaluate.py)"
        f" -- {HINT}\n",
    )


def test_check_fresh_catches_hand_edited_metrics(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    set_metrics(project, test_accuracy=0.99)
    assert lora(monkeypatch, capsys, project, "check-fresh")[:2] == (
        1,
        f"stale: evaluate (outs changed: metrics/eval.json) -- {HINT}\n",
    )


def test_lock_problem_names_what_is_missing():
    whole = {"schema": "2.0", "stages": {"train": {"cmd": "x", "outs": [OUT]}}}
    assert fresh.lock_problem(whole) is None
    assert fresh.lock_problem(None) == "no stages mapping"
    no_cmd = {"schema": "2.0", "stages": {"train": {"deps": []}}}
    assert (
        fresh.lock_problem(no_cmd) == "required key not provided @ data['stages']['train']['cmd']"
    )
    for cut in ({"path": "m", "hash": "md5"}, {**OUT, "md5": 179}):  # "md5: 0179" parses
        lock = {"schema": "2.0", "stages": {"train": {"cmd": "x", "outs": [cut]}}}
        assert fresh.lock_problem(lock) == "stage 'train': an entry of outs has no path and hash"
    cut_after_deps = {"schema": "2.0", "stages": {"train": {"cmd": "x", "deps": [OUT]}}}
    declared = {"train": {"cmd": "x", "outs": ["m"]}}
    assert fresh.lock_problem(cut_after_deps, declared) == "stage 'train' has no outs"
    assert fresh.lock_problem(cut_after_deps, {"train": {"cmd": "x"}}) is None


def test_check_fresh_and_gate_refuse_damaged_files(committed, tmp_path, monkeypatch, capsys):
    project = clone(committed, tmp_path / "clone")
    lock = (project / "dvc.lock").read_bytes()
    (project / "dvc.lock").write_bytes(lock[: len(lock) // 2])
    for command in (["check-fresh"], ["gate", "--base", "HEAD"]):
        code, out, err = lora(monkeypatch, capsys, project, *command)
        assert (code, out) == (2, "")
        assert err.startswith("lora-sst2: error: dvc.lock is damaged (")
        assert err.endswith(
            "); restore it with `git checkout -- dvc.lock`, or run `dvc repro` to write it anew\n"
        )
    run(["git", "checkout", "dvc.lock"], project)
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("  r: 4", "\tr: 4"))
    code, _, err = lora(monkeypatch, capsys, project, "check-fresh")
    assert code == 2
    assert err.startswith("lora-sst2: error: params.yaml is not valid YAML (line ")
    assert err.endswith("found character '\\t' that cannot start any token\n")
