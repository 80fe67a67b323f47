"""Bad input: one line naming the problem, a non-zero exit, earlier outputs untouched.

Each case copies the tiny reproduced project, breaks one thing, runs one stage (or the CLI)
and checks the message, the exit status, and that every output is byte-for-byte the same.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from lora_core.commands import cli
from stages import evaluate, prepare, tokenize, train
from tests.conftest import set_params, work_copy
from tests.tiny import VOCAB

MODEL = Path("models/base/sentence-transformers/all-MiniLM-L6-v2")
OUTPUTS = ("data/prepared", "data/tokenized", "models/adapter.safetensors", "metrics")


def _snapshot(project: Path) -> dict[str, str]:
    """The outputs' hashes; metrics/live/ is DVCLive's view of a run in progress, apart from
    the outputs, and moves as a run trains (README "Watch and resume training")."""
    files = {}
    for name in OUTPUTS:
        path = project / name
        for f in sorted([path] if path.is_file() else path.rglob("*")):
            if f.is_file() and not f.relative_to(project).as_posix().startswith("metrics/live/"):
                files[str(f.relative_to(project))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return files


def _param(section, key, value):
    return lambda p: set_params(p, {section: {key: value}})


def _write(rel, content: bytes):
    return lambda p: (p / rel).write_bytes(content)


def _drop_section(name):
    def change(p):
        text = (p / "params.yaml").read_text().split("\n")
        start = text.index(f"{name}:")
        end = next(i for i in range(start + 1, len(text)) if text[i] and text[i][0] != " ")
        (p / "params.yaml").write_text("\n".join(text[:start] + text[end:]))

    return change


def _truncate_weights(p):
    weights = p / MODEL / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def _bigger_vocab(p):
    (p / MODEL / "tokenizer.json").unlink()
    (p / MODEL / "vocab.txt").write_text("\n".join(VOCAB + ["extra1", "extra2"]) + "\n")


def _adapter_json(change):
    """models/adapter.json edited by ``change`` (a function of its parsed mapping)."""

    def edit(p):
        path = p / "models/adapter.json"
        raw = json.loads(path.read_text())
        change(raw)
        path.write_text(json.dumps(raw))

    return edit


ABC = b"sentence,label\n" + b"".join(b"t%d,%s\n" % (i, b"abc"[i % 3 : i % 3 + 1]) for i in range(9))


def _own(files: dict[str, bytes], **data):
    """data.dir = data/raw/own holding ``files``, with these data.* params."""

    def change(p):
        (p / "data/raw/own").mkdir(parents=True)
        for name, content in files.items():
            (p / "data/raw/own" / name).write_bytes(content)
        set_params(p, {"data": {"dir": "data/raw/own", "labels": None, **data}})

    return change


def _parquet(texts: list[str]) -> bytes:
    """A Parquet file of ``texts``, labels a and b in turn, compressed with zstd."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    labels = ["ab"[i % 2] for i in range(len(texts))]
    pq.write_table(pa.table({"sentence": texts, "label": labels}), out, compression="zstd")
    return out.getvalue()


R0 = "params.yaml: lora.r = 0 is not allowed: must be an integer from 1 to 1024"
CASES = {
    # params
    "lora.r 0": (train, _param("lora", "r", 0), R0),
    "lora.r -1": (train, _param("lora", "r", -1), "lora.r = -1 is not allowed: must be an integer"),
    "lora.r four": (train, _param("lora", "r", "four"), "lora.r = 'four' is not allowed: must be"),
    "lora.alpha 0": (
        train,
        _param("lora", "alpha", 0),
        "lora.alpha = 0.0 is not allowed: must be > 0",
    ),
    "lora.dropout 1": (train, _param("lora", "dropout", 1.0), "lora.dropout = 1.0 is not allowed"),
    "lora.targets": (
        train,
        _param("lora", "targets", ["qkv"]),
        "lora.targets = ('qkv',) matches no",
    ),
    "train.lr 0": (train, _param("train", "lr", 0), "train.lr = 0.0 is not allowed: must be > 0"),
    "train.lr -1": (
        train,
        _param("train", "lr", -1),
        "train.lr = -1.0 is not allowed: must be > 0",
    ),
    "train.epochs 0": (train, _param("train", "epochs", 0), "train.epochs = 0 is not allowed"),
    "batch_size 0": (
        train,
        _param("train", "batch_size", 0),
        "train.batch_size = 0 is not allowed",
    ),
    "val_fraction 0": (
        prepare,
        _param("data", "val_fraction", 0),
        "data.val_fraction = 0.0 is not",
    ),
    "val_fraction 1": (
        prepare,
        _param("data", "val_fraction", 1),
        "data.val_fraction = 1.0 is not",
    ),
    "max_length 0": (
        tokenize,
        _param("model", "max_length", 0),
        "model.max_length = 0 is not allowed",
    ),
    "max_length big": (
        tokenize,
        _param("model", "max_length", 513),
        "model.max_length = 513 is not allowed: sentence-transformers/all-MiniLM-L6-v2 takes at "
        "most 64 tokens",
    ),
    "unknown key": (
        train,
        _param("lora", "rank", 8),
        "unknown key lora.rank; allowed: alpha, dropout",
    ),
    "a 5,000-character value is echoed cut short": (
        train,
        _param("train", "device", "\x1b" * 5000),
        "params.yaml: train.device = '" + "\\x1b" * 49 + "\\x\u2026 is not allowed: use one of",
    ),
    "missing section": (prepare, _drop_section("data"), "params.yaml: missing section 'data'"),
    # data
    "no raw data": (
        prepare,
        lambda p: shutil.rmtree(p / "data/raw/sst2"),
        "no train file in data/raw/sst2/, and nyu-mll/glue/sst2 cannot be downloaded",
    ),
    "no label column": (
        prepare,
        _write("data/raw/sst2/train.tsv", b"sentence\tscore\ngood\t1\n"),
        "data/raw/sst2/train.tsv: no column 'label' (it has: score, sentence); set data.",
    ),
    "label 2": (
        prepare,
        _write("data/raw/sst2/dev.tsv", b"sentence\tlabel\ngood\t1\nbad\t2\n"),
        "data/raw/sst2/dev.tsv row 3: label '2' is not a class (0, 1)",
    ),
    "empty sentence": (
        prepare,
        _write("data/raw/sst2/dev.tsv", b"sentence\tlabel\n\t1\n"),
        "data/raw/sst2/dev.tsv row 2: sentence is '': every row needs some text",
    ),
    "not utf-8": (
        prepare,
        _write("data/raw/sst2/dev.tsv", b"sentence\tlabel\ncaf\xe9\t1\n"),
        "data/raw/sst2/dev.tsv: bytes that are not UTF-8 (at byte 18)",
    ),
    "empty file": (
        prepare,
        _write("data/raw/sst2/train.tsv", b""),
        "data/raw/sst2/train.tsv is empty: expected a header row and rows",
    ),
    "train file missing": (
        prepare,
        lambda p: (p / "data/raw/sst2/train.tsv").unlink(),
        "data/raw/sst2/ has dev.tsv but no train file (train.csv|.tsv|.jsonl|.parquet)",
    ),
    # your own data (data.dir = data/raw/own)
    "own: missing text column": (
        prepare,
        _own({"train.csv": b"review,label\nok,a\nfine,b\n"}),
        "data/raw/own/train.csv: no column 'sentence' (it has: label, review); set",
    ),
    "own: empty text": (
        prepare,
        _own({"train.csv": b'sentence,label\nok,a\n"  ",b\n'}),
        "data/raw/own/train.csv row 3: sentence is '  ': every row needs some text",
    ),
    "own: test label not a class": (
        prepare,
        _own({"train.csv": ABC, "test.jsonl": b'{"sentence": "x", "label": "d"}\n'}),
        "data/raw/own/test.jsonl line 1: label 'd' is not a class (a, b, c)",
    ),
    "own: a label with a terminal escape": (
        prepare,
        _own({"train.csv": ABC + b"t9,\x1b[31mc\n"}),
        "data/raw/own/train.csv row 11: label is '\\x1b[31mc': a class name holds no control "
        "characters (tabs, newlines, terminal escapes)",
    ),
    "own: a label of 5,000 digits": (
        prepare,
        _own({"train.csv": ABC + b"t9," + b"7" * 5000 + b"\n"}),
        "data/raw/own/train.csv row 11: label is 5,000 characters long: a label is a class name "
        "of at most 100 (is data.label_column a text column?)",
    ),
    "own: an id column as the label, with val and test files": (
        prepare,
        _own(
            {
                "train.csv": b"sentence,id\n" + b"".join(b"t,%d\n" % i for i in range(1001)),
                "validation.csv": b"sentence,id\nt,1\n",
                "test.csv": b"sentence,id\nt,2\n",
            },
            label_column="id",
        ),
        "data/raw/own/train.csv: id has 1,001 distinct labels, more than data.max_classes = "
        "1,000: is data.label_column an id column? (if these are classes, raise data.max_classes)",
    ),
    "own: a label of 5,000 digits in JSON Lines": (
        prepare,
        _own(
            {
                "train.jsonl": b'{"sentence": "x", "label": 1}\n{"sentence": "y", "label": '
                + b"7" * 5000
                + b"}\n"
            }
        ),
        "data/raw/own/train.jsonl line 2: a number of over 4,300 digits: no label or text is one",
    ),
    "own: a Parquet text that decompresses past the cap": (
        prepare,
        _own({"train.parquet": _parquet(["good", "x" * 5_000_000, "bad"])}),
        "data/raw/own/train.parquet: column 'sentence' of row group 0 is 5,0",
    ),
    "own: a text past the cap": (
        prepare,
        _own({"train.csv": ABC + b"x" * 100_001 + b",a\n"}),
        "data/raw/own/train.csv row 11: sentence is 100,001 characters long: at most 100,000 "
        "(a model reads only its first model.max_length tokens)",
    ),
    "own: one class": (
        prepare,
        _own({"train.csv": b"sentence,label\nok,a\nfine,a\n"}),
        "data/raw/own/train.csv: every row has the label 'a': a classifier needs at least two",
    ),
    "own: a class too small to stratify": (
        prepare,
        _own({"train.csv": ABC + b"lone,d\n"}),
        "data/raw/own/train.csv row 11: label 'd' has 1 row: carving stratified test and val",
    ),
    "own: a quote never closed": (
        prepare,
        _own({"train.csv": ABC + b'"open,a\n'}),
        "data/raw/own/train.csv row 11: unexpected end of data",
    ),
    "own: a row too wide": (
        prepare,
        _own({"train.csv": ABC + b"one,a,two\n"}),
        "data/raw/own/train.csv row 11: 3 fields, the header has 2",
    ),
    "own: two train files": (
        prepare,
        _own({"train.csv": ABC, "train.jsonl": b"{}\n"}),
        "data/raw/own/ holds train.csv and train.jsonl: keep one train file",
    ),
    "own: a class data.labels names that no row has": (
        prepare,
        _own({"train.csv": ABC}, labels=["a", "b", "c", "d"]),
        "data/raw/own/train.csv: no row has the label 'd' that data.labels names",
    ),
    "own: sentence split of pairs": (
        prepare,
        _own(
            {"train.csv": b"s,t,label\n" + b"x,y,a\nz,w,b\n" * 5},
            text_columns=["s", "t"],
            split="sentence",
        ),
        "data.split = 'sentence' is not allowed with two text columns: use random or auto",
    ),
    # model
    "no weights": (
        train,
        lambda p: (p / MODEL / "model.safetensors").unlink(),
        "cannot load model 'sentence-transformers/all-MiniLM-L6-v2': ",
    ),
    "truncated weights": (
        train,
        _truncate_weights,
        "the weights of model 'sentence-transformers/all-MiniLM-L6-v2' are damaged",
    ),
    "tokenizer vocab": (
        tokenize,
        _bigger_vocab,
        f"has {len(VOCAB) + 2} tokens but the model embeds only {len(VOCAB)}: tokenizer and",
    ),
    # training
    "diverging run": (
        train,
        lambda p: set_params(p, {"train": {"lr": 1e4, "max_grad_norm": 1e9}}),
        "training diverged: loss is nan at step ",
    ),
    "fp16 on the CPU": (  # the tiny project's train.device is cpu
        train,
        _param("train", "precision", "fp16"),
        "train.precision = 'fp16' needs a CUDA GPU: on CPU use bf16, fp32 or auto",
    ),
    # evaluate
    "evaluate fp16 on the CPU": (
        evaluate,
        _param("evaluate", "precision", "fp16"),
        "evaluate.precision = 'fp16' needs a CUDA GPU: on CPU use bf16, fp32 or auto",
    ),
    "adapter.json: a target regex that backtracks": (
        evaluate,
        _adapter_json(lambda raw: raw["lora"].update(targets="(a|a)*b|.*query")),
        "models/adapter.json: lora.targets = '(a|a)*b|.*query' is not allowed: a target regex",
    ),
    "adapter.json: weights from another run": (
        evaluate,
        _adapter_json(lambda raw: raw.update(weights_sha256="0" * 64)),
        "models/adapter.safetensors is not the weights file models/adapter.json was written "
        "with (its sha256 differs): copy both files from one run, or re-run `dvc repro`",
    ),
    "adapter.json: a class name with a terminal escape": (
        evaluate,
        _adapter_json(lambda raw: raw.update(labels=["negative", "\x1b]0;pwned\x07"])),
        "models/adapter.json: labels = ('negative', '\\x1b]0;pwned\\x07') is not allowed: a "
        "name holds no control characters (tabs, newlines, terminal escapes)",
    ),
    "adapter for another base": (
        evaluate,
        _param("model", "name", "bert-base-uncased"),
        "was trained on 'sentence-transformers/all-MiniLM-L6-v2', not 'bert-base-uncased'",
    ),
}


@pytest.fixture
def project(built_project, tmp_path, monkeypatch):
    return work_copy(built_project, tmp_path, monkeypatch)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stage_fails_in_one_line_and_leaves_outputs(project, capsys, case):
    stage, change, message = CASES[case]
    before = _snapshot(project)
    change(project)
    status = stage.main(["--no-progress"] if stage is train else [])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert _snapshot(project) == before
    assert not list(project.rglob("*.tmp"))


PREDICT_CASES = {
    "empty string": (["predict", ""], "input 1 is empty: every input needs some text"),
    "no input": (["predict"], "no input: give sentences as arguments or with --file PATH"),
    "binary file": (
        ["predict", "--file", "models/adapter.safetensors"],
        "--file models/adapter.safetensors contains a NUL byte (line 1): expected text",
    ),
    "directory": (
        ["predict", "--file", "data"],
        "--file data is a directory, expected a text file",
    ),
    "unreadable": (["predict", "--file", "nope.txt"], "cannot read --file nope.txt: No such file"),
    "no adapter": (["predict", "--adapter", "elsewhere", "ok"], "no adapter in elsewhere/"),
    "empty file": (
        ["predict", "--file", "/dev/null"],
        "--file /dev/null has no text: expected one sentence a line",
    ),
    "dash among sentences": (
        ["predict", "good", "-"],
        "'-' reads the sentences from standard input: give it alone, not among sentences",
    ),
    "no params file": (
        ["predict", "--params", "nope.yaml", "ok"],
        "params file not found: nope.yaml",
    ),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_bad_input_predict_fails_in_one_line(project, capsys, case):
    args, message = PREDICT_CASES[case]
    status = cli.main(args)
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("lora-sst2: error: ") and err.count("\n") == 1
    assert message in err


def test_bad_input_predict_10000_words_is_truncated_with_a_note(project, capsys):
    assert cli.main(["predict", "good " * 10_000]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert err == "note: 1 input(s) truncated to 32 tokens\n"


def test_bad_input_no_pickle_loading_and_no_remote_code():
    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("lora_core/**/*.py"), *root.glob("stages/*.py"), *root.glob("bench/*.py")]
    assert len(sources) > 10
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "import pickle" not in text and "pickle.load" not in text, path
        assert "trust_remote_code=True" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"
    assert "use_safetensors=True" in (root / "lora_core/pretrained.py").read_text(encoding="utf-8")
