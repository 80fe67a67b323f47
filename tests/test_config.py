import re
import time
from pathlib import Path

import pytest
import yaml

from lora_core.config import TARGET_REGEX, ConfigError, Params, load_params, target_regex_problem
from lora_core.errors import LoraSst2Error, shown

PARAMS = Path(__file__).parents[1] / "params.yaml"
DEFAULTS = Params().to_dict()  # the code's defaults, not the committed (maybe tuned) file
TEXT = yaml.safe_dump(DEFAULTS, sort_keys=False)  # the same, as a params.yaml


def _with(section: str, key: str, value) -> dict:
    raw = {name: dict(body) for name, body in DEFAULTS.items()}
    raw[section][key] = value
    return raw


def test_config_defaults_load_and_are_frozen():
    params = Params.from_dict(DEFAULTS)
    assert params == Params()
    assert params.lora.r == 4
    assert params.lora.targets == ("query", "value")
    assert params.lora.alpha == 16.0 and isinstance(params.lora.alpha, float)
    assert params.data.dir == "data/raw/sst2"
    with pytest.raises(AttributeError):
        params.lora.r = 8


def test_config_to_dict_is_params_yaml_shaped():
    assert list(DEFAULTS) == ["data", "model", "lora", "train", "evaluate", "gate", "tune"]
    assert DEFAULTS["lora"] == {
        "r": 4, "alpha": 16.0, "dropout": 0.1, "targets": ["query", "value"], "rslora": False,
        "dropout_mode": "token",
    }  # fmt: skip
    assert yaml.safe_load(yaml.safe_dump(DEFAULTS)) == DEFAULTS


def test_config_the_committed_params_yaml_is_valid_whatever_its_values():
    # Any valid params.yaml may be committed (`dvc exp apply` of a tuned run): the suite
    # reads its values nowhere else; the tiny projects write their own (tests/conftest.py).
    load_params(PARAMS)


@pytest.mark.parametrize(
    ("text", "value"),
    [("5e-05", 5e-05), ("1e-4", 1e-4), ("2.5E+1", 25.0), (".5e-2", 0.005), ("0.002", 0.002)],
)
def test_config_reads_exponent_floats_as_dvc_writes_them(tmp_path, text, value):
    # `dvc exp run -S train.lr=0.00005` writes 5e-05; YAML 1.1 would make that a string.
    path = tmp_path / "params.yaml"
    path.write_text(TEXT.replace("lr: 0.002", f"lr: {text}"))
    lr = load_params(path).train.lr
    assert lr == value and isinstance(lr, float)


def test_config_still_reads_words_integers_and_booleans_as_before(tmp_path):
    text, path = TEXT, tmp_path / "params.yaml"
    path.write_text(text.replace("batch_size: 32", "batch_size: 1_000"))
    train = load_params(path).train
    assert (train.batch_size, train.epochs, train.train_pooler) == (1000, 3, False)
    assert type(train.batch_size) is int and type(train.epochs) is int
    path.write_text(text.replace("epochs: 3", "epochs: 1e"))
    with pytest.raises(ConfigError, match=r"train.epochs = '1e' is not allowed"):
        load_params(path)


def test_config_refuses_an_infinite_number(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(TEXT.replace("lr: 0.002", "lr: 1e400"))
    with pytest.raises(ConfigError, match=r"train.lr = inf is not allowed: must be a number"):
        load_params(path)


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0.0), (0.05, 0.05)])
def test_config_model_dropout_is_null_or_a_float(value, expected):
    dropout = Params.from_dict(_with("train", "model_dropout", value)).train.model_dropout
    assert dropout == expected and type(dropout) is type(expected)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("lora", "r", 0, "lora.r = 0 is not allowed: must be an integer from 1 to 1024"),
        ("lora", "r", -1, "lora.r = -1 is not allowed: must be an integer from 1 to 1024"),
        ("lora", "r", 1025, "lora.r = 1025 is not allowed: must be an integer from 1 to 1024"),
        ("lora", "targets", "(", "lora.targets = '(' is not allowed: a string is a regex, and"),
        ("lora", "targets", "(.*)*x", "lora.targets = '(.*)*x' is not allowed: a target regex"),
        ("lora", "r", "four", "lora.r = 'four' is not allowed: must be an integer"),
        ("lora", "r", 2.5, "lora.r = 2.5 is not allowed: must be an integer"),
        ("lora", "alpha", 0, "lora.alpha = 0.0 is not allowed: must be > 0"),
        ("lora", "dropout", 1.0, "lora.dropout = 1.0 is not allowed: must be >= 0 and < 1"),
        ("lora", "dropout", -0.1, "lora.dropout = -0.1 is not allowed: must be >= 0 and < 1"),
        ("lora", "targets", [], "lora.targets = () is not allowed: must name at least one"),
        ("lora", "rslora", "yes", "lora.rslora = 'yes' is not allowed: must be true or false"),
        ("train", "lr", 0, "train.lr = 0.0 is not allowed: must be > 0"),
        ("train", "lr", "2e-3", "train.lr = '2e-3' is not allowed: must be a number"),
        ("train", "epochs", 0, "train.epochs = 0 is not allowed: must be from 1 to 1000"),
        ("train", "model_dropout", 1, "train.model_dropout = 1.0 is not allowed: must be null or"),
        ("train", "model_dropout", "none", "train.model_dropout = 'none' is not allowed: must be"),
        ("train", "batch_size", 0, "train.batch_size = 0 is not allowed: must be an integer fr"),
        (
            "train",
            "batch_size",
            1_000_000_000,
            "train.batch_size = 1000000000 is not allowed: must be an integer from 1 to 4096",
        ),
        ("train", "bucket_chunk", 5000, "train.bucket_chunk = 5000 is not allowed: must be an"),
        ("train", "processes", 0, "train.processes = 0 is not allowed: must be an integer from 1"),
        ("train", "processes", 257, "train.processes = 257 is not allowed: must be an integer f"),
        ("train", "processes", 1.5, "train.processes = 1.5 is not allowed: must be an integer"),
        ("model", "name", "bert\nbase", "model.name = 'bert\\nbase' is not allowed: must be a hub"),
        ("model", "name", " ", "model.name = ' ' is not allowed: must be a hub id or a folder"),
        ("model", "attention", "flash", "model.attention = 'flash' is not allowed: use auto, eage"),
        ("model", "truncation", "tail", "model.truncation = 'tail' is not allowed: use head or h"),
        ("train", "mode", "peft", "train.mode = 'peft' is not allowed: use lora, head, full"),
        ("train", "device", "tpu", "train.device = 'tpu' is not allowed: use one of auto, cpu"),
        ("train", "precision", "int8", "train.precision = 'int8' is not allowed: use auto, fp32"),
        ("data", "val_fraction", 0, "data.val_fraction = 0.0 is not allowed: must be > 0 and < 1"),
        ("data", "val_fraction", 1, "data.val_fraction = 1.0 is not allowed: must be > 0 and < 1"),
        ("data", "max_train_examples", 0, "data.max_train_examples = 0 is not allowed"),
        ("data", "max_classes", 1, "data.max_classes = 1 is not allowed: must be an integer >= 2"),
        ("model", "max_length", 0, "model.max_length = 0 is not allowed: must be an integer fr"),
        ("evaluate", "batch_size", -3, "evaluate.batch_size = -3 is not allowed"),
        ("evaluate", "batch_size", 10**6, "evaluate.batch_size = 1000000 is not allowed: must"),
    ],
)
def test_config_bad_value_gives_one_line_error(section, key, value, message):
    with pytest.raises(ConfigError) as info:
        Params.from_dict(_with(section, key, value))
    text = str(info.value)
    assert text.startswith("params.yaml: ") and message in text
    assert "\n" not in text


def test_config_unknown_key_names_it_and_the_allowed_keys():
    raw = _with("lora", "rank", 8)
    with pytest.raises(ConfigError) as info:
        Params.from_dict(raw)
    assert str(info.value) == (
        "params.yaml: unknown key lora.rank; allowed: alpha, dropout, dropout_mode, r, rslora, "
        "targets"
    )


def test_config_missing_and_unknown_sections():
    raw = {name: body for name, body in DEFAULTS.items() if name != "train"}
    with pytest.raises(ConfigError, match="^params.yaml: missing section 'train'$"):
        Params.from_dict(raw)
    with pytest.raises(ConfigError, match="^params.yaml: unknown section 'trian'"):
        Params.from_dict({**DEFAULTS, "trian": {}})


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  seed: 1\n\tlora: [r: 4\n", encoding="utf-8")
    with pytest.raises(LoraSst2Error) as info:
        load_params(bad)
    assert str(info.value) == (
        f"{bad} is not valid YAML (line 3): found character '\\t' that cannot start any token"
    )
    with pytest.raises(ConfigError, match=f"^{tmp_path} is a folder, expected the params file$"):
        load_params(tmp_path)


def test_select_nests_sections_and_keys_as_params_yaml_does():
    raw = Params().to_dict()
    lora = {**raw["lora"], "r": 8}
    params = Params.from_dict({**raw, "lora": lora})
    chosen = params.select(["model.name", "lora", "model.attention", "evaluate.batch_size"])
    model = {"name": raw["model"]["name"], "attention": raw["model"]["attention"]}
    assert chosen == {"model": model, "lora": lora, "evaluate": {"batch_size": 128}}


@pytest.mark.parametrize(
    "pattern",
    [r".*\.(query|value)", ".*(query|value)", "query|value", "(?:query|value)", "^bert.*key$"]
    + [r".*decoder.*(SelfAttention|EncDecAttention).*(q|v)$", r".*\.0\.attention\.self\.key"],
)
def test_target_regexes_a_target_list_needs_are_allowed(pattern):
    assert target_regex_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern", ["(.*)*x", "(a+)+b", "(a|a)*b", ".*.*.*.*x", "a{1,9}", "[qv]", r"(\w)\1", "(.|..)"]
)
def test_target_regexes_that_could_backtrack_are_refused(pattern):
    assert target_regex_problem(pattern) == TARGET_REGEX


def test_the_costliest_allowed_target_regex_matches_a_model_in_well_under_a_second():
    names = [f"bert.encoder.layer.{i}.attention.output.LayerNorm" for i in range(24)]
    group = "(" + "|".join(["a", "aa", "aaa", "e", "t", "n", "r", r"\."]) + ")"
    pattern = f".*{group}{group}.*{group}{group}.*x"
    assert target_regex_problem(pattern) is None
    start = time.perf_counter()
    assert not any(re.fullmatch(pattern, name) for name in names)
    assert time.perf_counter() - start < 1.0


def test_refused_values_and_keys_are_echoed_cut_to_200_characters():
    with pytest.raises(ConfigError) as info:
        Params.from_dict(_with("train", "device", "d" * 10_000))
    value = "'" + "d" * 198 + "\u2026"
    assert str(info.value).startswith(f"params.yaml: train.device = {value} is not allowed")
    raw = {name: dict(body) for name, body in DEFAULTS.items()}
    raw["lora"]["k" * 10_000] = 1
    with pytest.raises(ConfigError) as info:
        Params.from_dict(raw)
    key = "lora." + "k" * 194 + "\u2026"
    assert str(info.value).startswith(f"params.yaml: unknown key {key}; allowed: alpha")
    assert shown("x" * 10) == "'xxxxxxxxxx'" and len(shown("x" * 10**6)) == 200
