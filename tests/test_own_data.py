"""A user's own folder through the whole DAG: three string classes, sentence pairs, a quoted
multi-line CSV beside a TSV and JSON Lines, the folder tracked by `dvc add`."""

import json

import numpy as np

from stages import prepare, tokenize
from tests.conftest import lora, run, set_params
from tests.tiny import PAIR_CLASSES, tiny_pairs, write_tiny_pairs

# data.labels stays as shipped ([negative, positive], names for SST-2's integer ids): string
# labels are the classes in sorted order without editing it
PAIRS = {"dir": "data/raw/pairs", "text_columns": ["sentence1", "sentence2"]}


def test_string_labels_prepare_beside_the_shipped_data_labels(tiny_project, monkeypatch, capsys):
    write_tiny_pairs(tiny_project / "data/raw/pairs")
    set_params(tiny_project, {"data": PAIRS})
    monkeypatch.chdir(tiny_project)
    assert prepare.main([]) == 0
    # the tiny pairs draw short texts from a few words: many val and test rows hold one of
    # train's texts, counted here from the rows themselves
    texts = lambda rows: {r[k].strip() for r in rows for k in ("sentence1", "sentence2")}  # noqa: E731
    seen = texts(tiny_pairs(240, seed=1))
    shared = {
        name: sum(bool(texts([r]) & seen) for r in tiny_pairs(n, seed))
        for name, n, seed in (("val", 30, 2), ("test", 45, 3))
    }
    assert shared == {"val": 13, "test": 14}
    note = (
        "note: {} of {} {} pairs ({:.1f}%) hold a text that train's pairs hold too: a model "
        "that memorises texts scores well there, so {} (give a {} file whose texts train "
        "lacks)\n"
    )
    assert capsys.readouterr().out == (
        "data.labels ['negative', 'positive'] does not name every label of the train file, "
        "so its labels are the classes in sorted order: contradiction, entailment, neutral\n"
        + note.format(
            13, 30, "val (validation.tsv)", 43.3, "choosing by them favours it", "validation"
        )
        + note.format(14, 45, "test (test.jsonl)", 31.1, "they overstate new data", "test")
        + "prepared train 240, val 30, test 45 (3 classes, the folder's own splits)"
        " -> data/prepared/\n"
    )
    summary = json.loads((tiny_project / "data/prepared/summary.json").read_text())
    assert summary["labels"] == list(PAIR_CLASSES)
    assert summary["pair_text_in_train"] == shared


def test_three_class_pairs_through_dvc_repro_and_predict(tiny_project, monkeypatch, capsys):
    write_tiny_pairs(tiny_project / "data/raw/pairs")
    set_params(tiny_project, {"data": PAIRS})
    run(["dvc", "add", "-q", "data/raw/pairs"], tiny_project)  # versioned the DVC way
    run(["git", "add", "-A"], tiny_project)
    run(["git", "commit", "-qm", "own data"], tiny_project)
    run(["dvc", "repro", "-q"], tiny_project)

    summary = json.loads((tiny_project / "data/prepared/summary.json").read_text())
    assert summary["labels"] == list(PAIR_CLASSES)
    assert summary["sources"] == {
        "train": "train.csv",
        "val": "validation.tsv",
        "test": "test.jsonl",
    }
    assert {k: v["rows"] for k, v in summary["splits"].items()} == {
        "train": 240,
        "val": 30,
        "test": 45,
    }
    assert summary["splits"]["test"]["labels"] == {name: 15 for name in PAIR_CLASSES}
    first = json.loads((tiny_project / "data/prepared/train.jsonl").read_text().splitlines()[0])
    assert set(first) == {"text", "text_pair", "label"}

    config = json.loads((tiny_project / "models/adapter.json").read_text())
    assert (config["labels"], config["text_columns"]) == (list(PAIR_CLASSES), PAIRS["text_columns"])
    scores = json.loads((tiny_project / "metrics/eval.json").read_text())
    assert set(scores["test"]["per_class"]) == set(PAIR_CLASSES)
    assert "f1" not in scores["test"] and "macro_f1" in scores["test"]
    plots = {p.name for p in (tiny_project / "metrics/plots").iterdir()}
    assert plots == {
        *("confusion.json", "confusion.png", "training.png"),
        *("roc.json", "roc.png", "pr.json", "pr.png"),  # one-vs-rest, micro-averaged
    }
    confusion = json.loads((tiny_project / "metrics/plots/confusion.json").read_text())
    assert {p["actual"] for p in confusion} == set(PAIR_CLASSES)

    rows = tiny_pairs(6, seed=4)
    lines = ["sentence1\tsentence2"] + [
        f"{r['sentence1'].splitlines()[-1]}\t{r['sentence2']}" for r in rows
    ]
    (tiny_project / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = lora(
        monkeypatch, capsys, tiny_project, "predict", "--json", "--file", "pairs.tsv"
    )
    assert (code, err) == (0, "")
    predictions = [json.loads(line) for line in out.splitlines()]
    assert [p["text_pair"] for p in predictions] == [r["sentence2"] for r in rows]
    for p in predictions:
        assert set(p["probabilities"]) == set(PAIR_CLASSES)
        assert np.isclose(sum(p["probabilities"].values()), 1.0, atol=1e-5)
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
    status = json.loads(run(["dvc", "status", "--json"], tiny_project).stdout)
    assert status == {"fetch": ["always changed"]}

    set_params(tiny_project, {"model": {"max_length": 4}})  # no room for a token of each
    assert tokenize.main([]) == 2
    assert capsys.readouterr().err == (
        "error: params.yaml: model.max_length = 4 is not allowed for sentence pairs: at least 5 "
        "([CLS] a [SEP] b [SEP])\n"
    )
