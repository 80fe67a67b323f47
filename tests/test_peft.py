"""`lora-sst2 export --peft` and `--adapter PEFTDIR`: PEFT reads our adapters, we read PEFT's."""

import json

import pytest
import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lora_core.adapter import load_trained, write_adapter
from lora_core.adapter_config import AdapterConfig
from lora_core.commands import cli
from lora_core.config import LoraConfig, ModelConfig
from lora_core.errors import ConfigError, LoraSst2Error
from lora_core.inference import load_for_inference
from lora_core.inject import lora_state_dict
from lora_core.model import build_classifier
from lora_core.peft import EXPORT_MARKER, from_peft
from tests.conftest import snapshot, work_copy

BASE = "sentence-transformers/all-MiniLM-L6-v2"
MIRROR = f"models/base/{BASE}"
TEXTS = ["a gorgeous , witty film", "a dull , boring mess", "fun"]
LAYERS = [f"bert.encoder.layer.{i}.attention.self" for i in (0, 1)]
# name -> (lora.targets, train_pooler, rslora); "trained" is the built project's own adapter
VARIANTS = {
    "trained": (("query", "value"), False, False),
    "pooler_rslora_regex": (r".*\.(key|output\.dense)", True, True),
    "suffix_on_pooler": (("dense",), False, False),
}


@pytest.fixture
def project(built_project, monkeypatch):
    monkeypatch.chdir(built_project)
    return built_project


def _lora(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _adapter(folder, targets, train_pooler=False, rslora=False, mode="lora"):
    """An adapter of the tiny base, every trainable tensor moved off its init (no training)."""
    lora = LoraConfig(r=3, alpha=5.0, targets=targets, rslora=rslora)
    model = build_classifier(ModelConfig(name=BASE), lora, mode, train_pooler, seed=1)
    state = {k: v + 0.1 * torch.randn_like(v) for k, v in lora_state_dict(model).items()}
    folder.mkdir()
    config = AdapterConfig(BASE, 32, mode, train_pooler, lora)
    write_adapter(folder / "adapter.safetensors", folder / "adapter.json", state, config)
    return folder


def _source(name, tmp_path):
    if name == "trained":
        return "models"
    targets, train_pooler, rslora = VARIANTS[name]
    return str(_adapter(tmp_path / name, targets, train_pooler, rslora))


def _batch():
    return AutoTokenizer.from_pretrained(MIRROR)(TEXTS, padding=True, return_tensors="pt")


def _peft_model(folder):
    base = AutoModelForSequenceClassification.from_pretrained(MIRROR, num_labels=2)
    return PeftModel.from_pretrained(base, folder).eval()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_export_peft_loads_in_peft_with_our_logits(project, capsys, tmp_path, variant):
    source, out = _source(variant, tmp_path), tmp_path / "peft"
    code, stdout, err = _lora(capsys, "export", "--peft", str(out), "--adapter", source)
    assert (code, err) == (0, "")
    assert stdout == f"PEFT adapter written to {out}/ (load it with PeftModel.from_pretrained)\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        EXPORT_MARKER,
    ]
    peft, ours = _peft_model(out), load_for_inference(source).model.cpu()
    with torch.no_grad():
        theirs = peft(**_batch()).logits
        torch.testing.assert_close(theirs, ours(**_batch()).logits, atol=1e-5, rtol=0)
        with peft.disable_adapter():  # the adapter changes the logits: the check has teeth
            assert (peft(**_batch()).logits - theirs).abs().max() > 1e-3


def test_export_peft_writes_exact_keys_tensors_and_config(project, capsys, tmp_path):
    out = tmp_path / "peft"
    assert _lora(capsys, "export", "--peft", str(out))[0] == 0
    tensors = load_file(out / "adapter_model.safetensors")
    lora = {f"{layer}.{m}.lora_{ab}" for layer in LAYERS for m in ("query", "value") for ab in "AB"}
    expected = {f"base_model.model.{k}.weight" for k in lora} | {
        "base_model.model.classifier.weight",
        "base_model.model.classifier.bias",
    }
    assert set(tensors) == expected
    ours = load_file(project / "models/adapter.safetensors")
    for key, value in ours.items():
        peft_key = f"base_model.model.{key}" + (".weight" if key in lora else "")
        assert torch.equal(tensors[peft_key], value)
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert json.loads((out / "adapter_config.json").read_text()) == {
        "alpha_pattern": {},
        "base_model_name_or_path": BASE,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": 16.0,
        "lora_dropout": 0.1,
        "modules_to_save": ["classifier", "score"],
        "peft_type": "LORA",
        "r": 4,
        "rank_pattern": {},
        "revision": None,
        "target_modules": ["query", "value"],
        "task_type": "SEQ_CLS",
        "use_dora": False,
        "use_rslora": False,
    }
    assert json.loads((out / EXPORT_MARKER).read_text()) == {
        "made_by": "lora-sst2 export --peft",
        "base_model": BASE,
        "max_length": 32,
        "id2label": {"0": "negative", "1": "positive"},
        "text_columns": ["sentence"],
        "files": ["adapter_config.json", "adapter_model.safetensors"],
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_export_peft_mirrors_what_peft_itself_saves(project, capsys, tmp_path, variant):
    targets, train_pooler, rslora = VARIANTS[variant]
    source, out, native = _source(variant, tmp_path), tmp_path / "peft", tmp_path / "native"
    assert _lora(capsys, "export", "--peft", str(out), "--adapter", source)[0] == 0
    ours = json.loads((out / "adapter_config.json").read_text())
    config = PeftLoraConfig(
        task_type="SEQ_CLS",
        r=ours["r"],
        lora_alpha=ours["lora_alpha"],
        lora_dropout=ours["lora_dropout"],
        target_modules=targets if isinstance(targets, str) else list(targets),
        use_rslora=rslora,
        modules_to_save=["pooler"] if train_pooler else None,
    )
    base = AutoModelForSequenceClassification.from_pretrained(MIRROR, num_labels=2)
    get_peft_model(base, config).save_pretrained(native)
    theirs = json.loads((native / "adapter_config.json").read_text())
    theirs["base_model_name_or_path"] = BASE  # PEFT writes the folder it loaded from
    if not isinstance(targets, str):
        theirs["target_modules"] = sorted(theirs["target_modules"])  # PEFT's is a set
        ours["target_modules"] = sorted(ours["target_modules"])
    assert {k: theirs[k] for k in ours} == ours
    native_keys = set(load_file(native / "adapter_model.safetensors"))
    assert set(load_file(out / "adapter_model.safetensors")) == native_keys


def test_predict_and_info_read_a_peft_folder_as_the_adapter_it_came_from(project, capsys, tmp_path):
    out, again = tmp_path / "peft", tmp_path / "again"
    assert _lora(capsys, "export", "--peft", str(out))[0] == 0
    ours = _lora(capsys, "predict", "--json", *TEXTS)
    assert _lora(capsys, "predict", "--json", "--adapter", str(out), *TEXTS) == ours
    assert ours[0] == 0 and len(ours[1].splitlines()) == 3
    shown = _lora(capsys, "info", "--adapter", str(out))[1].splitlines()
    info = dict(line.split(None, 1) for line in shown)
    assert (info["mode"], info["r"], info["alpha"], info["targets"]) == (
        "lora",
        "4",
        "16.0",
        "['query', 'value']",
    )
    assert int(info["adapter_bytes"]) == (out / "adapter_model.safetensors").stat().st_size
    # and back again: PEFT -> ours -> PEFT is the same folder, byte for byte
    assert _lora(capsys, "export", "--peft", str(again), "--adapter", str(out))[0] == 0
    assert snapshot(again) == snapshot(out)


def test_a_folder_peft_itself_saved_loads_with_peft_logits(project, tmp_path):
    base = AutoModelForSequenceClassification.from_pretrained(MIRROR, num_labels=2)
    config = PeftLoraConfig(task_type="SEQ_CLS", r=2, lora_alpha=3, target_modules=["value"])
    native = get_peft_model(base, config)
    with torch.no_grad():
        for param in native.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn_like(param))
    native.eval().save_pretrained(tmp_path / "native")
    model, adapter = load_trained(tmp_path / "native")
    assert adapter == AdapterConfig(
        MIRROR,
        128,
        "lora",
        False,
        LoraConfig(2, 3.0, 0.0, ("value",), dropout_mode="element"),
        labels=("LABEL_0", "LABEL_1"),  # PEFT's own folder names no classes
    )
    with torch.no_grad():
        torch.testing.assert_close(
            model.eval()(**_batch()).logits, native(**_batch()).logits, atol=1e-5, rtol=0
        )


@pytest.fixture
def copy(built_project, tmp_path, monkeypatch):
    return work_copy(built_project, tmp_path, monkeypatch)


def _refused(capsys, before_root, *argv):
    before = snapshot(before_root)
    code, out, err = _lora(capsys, *argv)
    assert (code, out, len(err.splitlines())) == (2, "", 1)
    assert snapshot(before_root) == before
    return err.removeprefix("lora-sst2: error: ").rstrip("\n")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (".", ". is the working directory or a folder above it: refusing to replace it; choose"),
        ("models", "export --peft models: that is (inside) a folder the pipeline owns; choose"),
        ("stages", "export --peft stages: git tracks files there; not even --force"),
    ],
)
def test_export_peft_refuses_folders_not_its_own(copy, capsys, target, message):
    assert _refused(capsys, copy.parent, "export", "--peft", target, "--force").startswith(message)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            ("head", ("query",), False),
            "the adapter's mode is 'head', and PEFT's format holds LoRA adapters (mode 'lora') "
            "only: export this one with --merged",
        ),
        (
            ("lora", ("query", "word_embeddings"), False),
            "lora.targets = ('query', 'word_embeddings') also matches "
            "'bert.embeddings.word_embeddings' (Embedding), which PEFT would adapt too: "
            "let lora.targets match nn.Linear layers only",
        ),
        (
            ("lora", ("dense",), True),
            "lora.targets = ('dense',) adapts bert.pooler.dense, which PEFT trains whole and "
            "never adapts: keep the classifier (and the pooler with train_pooler) out of "
            "lora.targets",
        ),
    ],
)
def test_export_peft_refuses_what_peft_cannot_hold(copy, capsys, tmp_path, kind, message):
    mode, targets, train_pooler = kind
    source = _adapter(tmp_path / "source", targets, train_pooler, mode=mode)
    out = tmp_path / "peft"
    argv = ("export", "--peft", str(out), "--adapter", str(source))
    assert _refused(capsys, tmp_path, *argv) == f"export --peft {out}: {message}"


def test_export_needs_exactly_one_of_merged_and_peft(capsys):
    for argv in (["export"], ["export", "--merged", "a", "--peft", "b"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: one of the arguments --merged --peft is required" in err
    assert "error: argument --peft: not allowed with argument --merged" in err


def test_a_damaged_peft_folder_is_one_line(project, capsys, tmp_path):
    out = tmp_path / "peft"
    assert _lora(capsys, "export", "--peft", str(out))[0] == 0
    (out / "adapter_config.json").write_text('{"peft_type": "LORA",')
    argv = ("predict", "--adapter", str(out), "good")
    assert _refused(capsys, tmp_path, *argv) == (
        f"{out}/adapter_config.json is not valid JSON (line 1): Expecting property name enclosed "
        "in double quotes"
    )
    (out / "adapter_config.json").unlink()
    assert _refused(capsys, tmp_path, *argv) == (
        f"no adapter in {out}/: it holds a PEFT adapter without adapter_config.json"
    )


GOOD = {
    "peft_type": "LORA",
    "task_type": "SEQ_CLS",
    "base_model_name_or_path": BASE,
    "target_modules": ["query"],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"peft_type": "IA3"}, "peft_type = 'IA3' is not allowed: this version reads LORA only"),
        ({"task_type": None}, "task_type = None is not allowed: this version reads SEQ_CLS only"),
        ({"bias": "all"}, "bias = 'all' is not allowed: this version reads 'none' only"),
        ({"r": 0}, "r = 0 is not allowed: an integer from 1 to 1024"),
        ({"lora_alpha": True}, "lora_alpha = True is not allowed: a number > 0"),
        ({"target_modules": "all-linear"}, "target_modules = 'all-linear' is not allowed: module"),
        ({"target_modules": None}, "target_modules = None is not allowed: module suffixes or a"),
        ({"target_modules": "(.*)*x"}, "target_modules = '(.*)*x' is not allowed: a target regex"),
        ({"target_modules": "(" * 600}, "target_modules = '((((("),
        ({"base_model_name_or_path": None}, "base_model_name_or_path = None is not allowed: an"),
        (
            {"base_model_name_or_path": "m\x1b[2J"},
            "base_model = 'm\\x1b[2J' is not allowed: must be a hub id or a folder name, with no",
        ),
        ({"use_dora": True}, "use_dora = True is not allowed: this version reads plain LoRA only"),
        ({"rank_pattern": {"query": 8}}, "rank_pattern = {'query': 8} is not allowed: this ver"),
        ({"layers_to_transform": 0}, "layers_to_transform = 0 is not allowed: this version re"),
        ({"init_lora_weights": "pissa"}, "init_lora_weights = 'pissa' is not allowed: true, fal"),
        (
            {"modules_to_save": ["classifier", "encoder"]},
            "modules_to_save = ['classifier', 'encoder'] is not allowed: null or some of "
            "classifier, score, pooler, bert.pooler",
        ),
    ],
)
def test_peft_configs_we_cannot_represent_are_refused_by_key(change, message):
    with pytest.raises(ConfigError) as info:
        from_peft({**GOOD, **change}, {}, "p/adapter_config.json", "p/w")
    assert str(info.value).startswith(f"p/adapter_config.json: {message}")


def test_peft_tensors_other_than_plain_lora_are_refused():
    key = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_magnitude_vector"
    with pytest.raises(LoraSst2Error) as info:
        from_peft(GOOD, {key: torch.ones(2)}, "p/adapter_config.json", "p/w")
    assert str(info.value).startswith(f"p/w holds {key!r}: this version reads PEFT's LoRA weights")
