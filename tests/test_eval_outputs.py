"""What evaluate writes (eval_outputs.write_evaluation): eval.json's keys, predictions, plots."""

import json

import numpy as np
import pytest

from lora_core.errors import LoraSst2Error
from lora_core.eval_outputs import write_evaluation
from lora_core.files import staged
from lora_core.metrics import roc_points, softmax
from lora_core.scores import PREDICTIONS, VAL_PREDICTIONS, predictions_csv, read_predictions

SPLIT_KEYS = {"accuracy", "macro_f1", "mcc", "loss", "examples", "per_class"}
BINARY_KEYS = SPLIT_KEYS | {"f1", "precision", "recall"}
INTERVALS = {f"{m}_ci95_{end}" for m in ("accuracy", "macro_f1") for end in ("low", "high")}
BINARY_INTERVALS = INTERVALS | {"f1_ci95_low", "f1_ci95_high"}
CLASS_KEYS = {"precision", "recall", "f1", "support"}
NAMES3 = ("negative", "neutral", "positive")


def _results(classes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """30 test and 12 val examples, every fourth predicted as the next class."""
    labels = np.arange(30) % classes
    predicted = np.where(np.arange(30) % 4 == 0, (labels + 1) % classes, labels)
    logits = (2 * np.eye(classes)[predicted] + np.linspace(0, 1, 30)[:, None]).astype(np.float32)
    return {"val": (logits[:12], labels[:12]), "test": (logits, labels)}


def _evaluate(tmp_path, names: tuple[str, ...]) -> tuple[dict, set[str]]:
    """(eval.json, the plot files) of a write_evaluation with ``names``."""
    metrics = tmp_path / "metrics"
    with staged() as out:
        scores = write_evaluation(out, _results(len(names)), metrics, metrics / "plots", 100, names)
    written = json.loads((metrics / "eval.json").read_text())
    assert written == scores
    return written, {p.name for p in (metrics / "plots").iterdir()}


def test_binary_evaluation_keeps_every_key_and_plot(tmp_path):
    scores, plots = _evaluate(tmp_path, ("negative", "positive"))
    assert set(scores) == {"val", "test"}
    assert set(scores["val"]) == BINARY_KEYS
    assert set(scores["test"]) == BINARY_KEYS | BINARY_INTERVALS
    assert set(scores["test"]["per_class"]) == {"negative", "positive"}
    assert all(set(c) == CLASS_KEYS for c in scores["test"]["per_class"].values())
    assert scores["test"]["f1"] == scores["test"]["per_class"]["positive"]["f1"]
    assert plots == {"confusion.json", "confusion.png", "roc.json", "roc.png", "pr.json", "pr.png"}


def test_three_class_evaluation_has_names_and_pooled_roc_and_pr(tmp_path):
    (tmp_path / "metrics/plots").mkdir(parents=True)
    (tmp_path / "metrics/plots/stale.json").write_text("{}")  # the folder is replaced whole
    scores, plots = _evaluate(tmp_path, NAMES3)
    assert set(scores["val"]) == SPLIT_KEYS
    assert set(scores["test"]) == SPLIT_KEYS | INTERVALS
    assert list(scores["test"]["per_class"]) == list(NAMES3)
    assert [c["support"] for c in scores["test"]["per_class"].values()] == [10, 10, 10]
    assert scores["test"]["accuracy"] == round(22 / 30, 6)  # 8 of 30 turned to the next class
    assert plots == {"confusion.json", "confusion.png", "roc.json", "roc.png", "pr.json", "pr.png"}
    roc = json.loads((tmp_path / "metrics/plots/roc.json").read_text())
    assert roc == roc_points(*_results(3)["test"])  # one-vs-rest over 30 x 3 (example, class)
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    confusion = json.loads((tmp_path / "metrics/plots/confusion.json").read_text())
    assert confusion[0] == {"actual": "negative", "predicted": "neutral"}
    assert {p["actual"] for p in confusion} == set(NAMES3)


def test_evaluation_refuses_names_that_do_not_match_the_classes(tmp_path):
    with pytest.raises(LoraSst2Error) as err, staged() as out:
        write_evaluation(out, _results(3), tmp_path, tmp_path / "plots", 10, ("no", "yes"))
    assert str(err.value) == (
        "the model scores 3 classes but its adapter names 2 labels (no, yes): "
        "run `dvc repro --force train`"
    )
    assert not (tmp_path / "eval.json").exists()


@pytest.mark.parametrize("classes", [2, 3])
def test_predictions_csv_probability_is_p1_for_two_classes_else_the_predicted(classes):
    logits, labels = _results(classes)["test"]
    rows = predictions_csv(logits, labels).splitlines()
    assert rows[0] == "index,label,predicted,probability" and len(rows) == 31
    probs, predicted = softmax(logits), logits.argmax(axis=1)
    column = 1 if classes == 2 else predicted
    expected = [f"{q:.6f}" for q in probs[np.arange(30), column]]
    assert [row.split(",")[3] for row in rows[1:]] == expected
    read_labels, read_predicted = read_predictions("\n".join(rows) + "\n")
    assert read_labels.tolist() == labels.tolist()
    assert read_predicted.tolist() == predicted.tolist()


def test_read_predictions_round_trip_and_damage():
    labels, predicted = read_predictions(
        "index,label,predicted,probability\n0,1,0,0.2\n1,0,0,0.1\n"
    )
    assert labels.tolist() == [1, 0] and predicted.tolist() == [0, 0]
    with pytest.raises(ValueError):
        read_predictions("index,label\n0,1\n")
    with pytest.raises(ValueError):
        read_predictions("index,label,predicted,probability\n1,1,0,0.2\n")


def test_val_predictions_are_written_beside_test_in_the_same_format(tmp_path):
    _evaluate(tmp_path, ("negative", "positive"))
    results = _results(2)
    for split, path in (("val", VAL_PREDICTIONS), ("test", PREDICTIONS)):
        text = (tmp_path / "metrics" / path).read_text()
        assert text == predictions_csv(*results[split])
    labels, _ = read_predictions((tmp_path / "metrics" / VAL_PREDICTIONS).read_text())
    assert labels.tolist() == results["val"][1].tolist() and len(labels) == 12
