"""Adapter files: adapter.json is validated like params.yaml, tensors are checked."""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lora_core.adapter import read_adapter, write_adapter
from lora_core.adapter_config import AdapterConfig
from lora_core.config import ConfigError, Params
from lora_core.errors import LoraSst2Error
from lora_core.pretrained import LABELS
from lora_core.tokens import Task

EXPECTED_JSON = {
    "format": 1,
    "base_model": "sentence-transformers/all-MiniLM-L6-v2",
    "max_length": 128,
    "mode": "lora",
    "train_pooler": False,
    "labels": ["negative", "positive"],
    "text_columns": ["sentence"],
    "lora": {
        "r": 4,
        "alpha": 16.0,
        "dropout": 0.1,
        "targets": ["query", "value"],
        "rslora": False,
        "dropout_mode": "token",
    },  # fmt: skip
}


NO_CC = "allowed: a name holds no control characters (tabs, newlines, terminal escapes)"


def test_adapter_config_from_params_writes_format_1_exactly():
    config = AdapterConfig.from_params(Params())
    assert config.to_json() == EXPECTED_JSON
    assert list(config.to_json()) == list(EXPECTED_JSON)  # key order, so bytes stay stable
    assert AdapterConfig.from_json(EXPECTED_JSON, "adapter.json") == config
    # written before lora.dropout_mode existed, so trained with PEFT's element dropout
    older = {**EXPECTED_JSON, "lora": {k: v for k, v in EXPECTED_JSON["lora"].items()}}
    del older["lora"]["dropout_mode"]
    del older["text_columns"]  # and before sentence pairs: one text column
    read = AdapterConfig.from_json(older, "adapter.json")
    assert read.lora == dataclasses.replace(config.lora, dropout_mode="element")
    assert read.text_columns == ("sentence",)


def test_adapter_json_records_head_tail_beside_max_length_and_head_by_its_absence():
    config = AdapterConfig.from_params(Params(), Task(LABELS, ("sentence",), "head+tail"))
    raw = config.to_json()
    assert list(raw)[:4] == ["format", "base_model", "max_length", "truncation"]
    assert {k: v for k, v in raw.items() if k != "truncation"} == EXPECTED_JSON
    assert AdapterConfig.from_json(raw, "adapter.json") == config
    assert config.model_config().truncation == "head+tail"
    assert AdapterConfig.from_json(EXPECTED_JSON, "adapter.json").truncation == "head"


def test_adapter_round_trips_through_its_two_files(tmp_path):
    state = {"b": torch.ones(2, 3), "a": torch.arange(4.0)}
    config = AdapterConfig.from_params(Params())
    write_adapter(tmp_path / "adapter.safetensors", tmp_path / "adapter.json", state, config)
    loaded, loaded_config = read_adapter(tmp_path)
    assert loaded_config == config and set(loaded) == {"a", "b"}
    torch.testing.assert_close(loaded["a"], state["a"], rtol=0, atol=0)
    digest = hashlib.sha256((tmp_path / "adapter.safetensors").read_bytes()).hexdigest()
    written = json.loads((tmp_path / "adapter.json").read_text())
    assert written == {**EXPECTED_JSON, "weights_sha256": digest}
    assert list(written) == [*EXPECTED_JSON, "weights_sha256"]  # the one key added, last


def _pair(folder: Path, scale: float) -> None:
    state = {"a": torch.arange(4.0) * scale}
    write_adapter(folder / "adapter.safetensors", folder / "adapter.json", state, CONFIG)


CONFIG = AdapterConfig.from_params(Params())


def test_adapter_weights_from_another_run_are_refused_naming_both_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _pair(tmp_path / "a", 1.0)
    _pair(tmp_path / "b", 2.0)  # the same shapes, other values
    shutil.copy(tmp_path / "b/adapter.safetensors", tmp_path / "a/adapter.safetensors")
    with pytest.raises(LoraSst2Error) as info:
        read_adapter(tmp_path / "a")
    assert str(info.value) == (
        f"{tmp_path}/a/adapter.safetensors is not the weights file {tmp_path}/a/adapter.json "
        "was written with (its sha256 differs): copy both files from one run, or re-run "
        "`dvc repro`"
    )


def test_adapter_json_without_the_weights_hash_still_loads(tmp_path):
    _pair(tmp_path, 1.0)
    (tmp_path / "adapter.json").write_text(json.dumps(EXPECTED_JSON))  # as written before
    state, config = read_adapter(tmp_path)
    assert config == CONFIG
    torch.testing.assert_close(state["a"], torch.arange(4.0), rtol=0, atol=0)


@pytest.mark.parametrize("digest", [None, "ab", 7, "A" * 64])
def test_adapter_json_with_a_malformed_weights_hash_is_refused(tmp_path, digest):
    _pair(tmp_path, 1.0)
    (tmp_path / "adapter.json").write_text(json.dumps({**EXPECTED_JSON, "weights_sha256": digest}))
    with pytest.raises(ConfigError) as info:
        read_adapter(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}/adapter.json: weights_sha256 = {digest!r} is not allowed: the sha256 of "
        "adapter.safetensors (64 hex digits)"
    )


def _with(**changes):
    raw = json.loads(json.dumps(EXPECTED_JSON))
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            raw[section][leaf] = value
        elif value is None:
            del raw[section]
        else:
            raw[section] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_with(lora=None), "missing key 'lora'"),
        (_with(lora__rank=8), "unknown key lora.rank; allowed: alpha, dropout, dropout_mode, r"),
        (_with(lora__targets="("), "lora.targets = '(' is not allowed: a string is a regex"),
        (_with(lora__targets="(a|a)*b"), "lora.targets = '(a|a)*b' is not allowed: a target regex"),
        (_with(lora__r=0), "lora.r = 0 is not allowed: must be an integer from 1 to 1024"),
        (_with(mode="half"), "mode = 'half' is not allowed: use lora, head, full"),
        (_with(format=2), "format = 2 is not allowed: this version reads 1"),
        (_with(labels=["only"]), "labels = ('only',) is not allowed: must list two or more"),
        (_with(labels=["a", "a"]), "labels = ('a', 'a') is not allowed: must list two or more"),
        (_with(labels="ab"), "labels = 'ab' is not allowed: must be a list of strings"),
        (_with(text_columns=["a", "b", "c"]), "text_columns = ('a', 'b', 'c') is not allowed"),
        (_with(max_length="128"), "max_length = '128' is not allowed: must be an integer"),
        (_with(max_length=10**5), "max_length = 100000 is not allowed: must be an integer from 2"),
        (_with(format=True), "format = True is not allowed: must be an integer"),
        (_with(base_model="  "), "base_model = '  ' is not allowed: must be a hub id or a"),
        (_with(labels=["a", "\x1b]0;x\x07b"]), "labels = ('a', '\\x1b]0;x\\x07b') is not " + NO_CC),
        (_with(text_columns=["a\nb"]), "text_columns = ('a\\nb',) is not allowed: a name holds no"),
        (
            _with(base_model="m\x1b[2J"),
            "base_model = 'm\\x1b[2J' is not allowed: must be a hub id or a folder name, with",
        ),
        (_with(truncation="tail"), "truncation = 'tail' is not allowed: use head or head+tail"),
        (
            _with(truncation="head+tail", text_columns=["a", "b"]),
            "truncation = 'head+tail' is not allowed: sentence pairs cut their longer text",
        ),
        (_with(extra=1), "unknown key 'extra'; allowed: base_model, format, labels, lora"),
        ([1, 2], "expected a mapping of keys, got [1, 2]"),
    ],
)
def test_adapter_json_errors_name_the_file_and_key(raw, message):
    with pytest.raises(ConfigError) as info:
        AdapterConfig.from_json(raw, "runs/a/adapter.json")
    assert str(info.value).startswith("runs/a/adapter.json: ")
    assert message in str(info.value)


def test_adapter_with_nan_tensors_is_refused(tmp_path):
    save_file({"w": torch.tensor([1.0, float("nan")])}, str(tmp_path / "adapter.safetensors"))
    (tmp_path / "adapter.json").write_text(json.dumps(EXPECTED_JSON))
    with pytest.raises(
        LoraSst2Error, match=r"adapter.safetensors holds NaN or inf values \(in w\)"
    ):
        read_adapter(tmp_path)


def test_adapter_missing_files_say_how_to_make_one(tmp_path):
    with pytest.raises(LoraSst2Error, match=f"no adapter in {Path(tmp_path)}/"):
        read_adapter(tmp_path)
