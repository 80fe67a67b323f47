"""The TF-IDF baseline: C chosen on val alone, evaluate's keys and files, pairs, and
`lora-sst2 compare` (the model beside it, McNemar on the same rows)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from lora_core.baseline import (
    BASELINE,
    BASELINE_PREDICTIONS,
    _analyzer,
    fit_baseline,
    run_baseline,
)
from lora_core.commands.compare import compare_lines
from lora_core.commands.paired import pair
from lora_core.config import Params
from lora_core.data import Examples, write_examples
from lora_core.files import staged, write_json
from lora_core.metrics import classification_metrics
from lora_core.scores import PREDICTIONS, predictions_csv, read_predictions, scores_with_intervals
from stages import baseline as stage
from tests.conftest import lora

NAMES = ("negative", "positive")
GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
# 6 positive and 4 negative train rows: at a small C the intercept outweighs every word and
# all of val is called positive (2 of 6 right); from C = 10 each word decides (6 of 6).
TRAIN = Examples(
    ["good film", "great plot", "good acting", "fine film", "great cast", "lovely story"]
    + ["bad film", "awful plot", "bad acting", "dull cast"],
    [1] * 6 + [0] * 4,
)
VAL = Examples(
    ["good story", "bad story", "awful film", "dull film", "great film", "bad cast"],
    [1, 0, 0, 0, 1, 0],
)
TEST = Examples(["lovely acting", "dull plot", "fine cast", "awful story"], [1, 0, 1, 0])
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}
RESAMPLES = 1000


def write_prepared(folder: Path, splits: dict[str, Examples], columns=("sentence",)) -> Path:
    """A prepared folder as the prepare stage writes it (the fields the baseline reads)."""
    folder.mkdir(parents=True)
    for name, examples in splits.items():
        write_examples(folder / f"{name}.jsonl", examples, NAMES)
    write_json(folder / "summary.json", {"labels": list(NAMES), "text_columns": list(columns)})
    return folder


def test_fit_baseline_chooses_the_best_val_c_and_the_smaller_of_a_tie():
    fit = fit_baseline(SPLITS, 2, GRID)
    third = 1 / 3
    assert fit.val_accuracy == {0.01: third, 0.1: third, 1.0: 0.5, 10.0: 1.0, 100.0: 1.0}
    assert fit.c == 10.0  # 10 and 100 tie at 1.0: the stronger penalty
    assert fit_baseline(SPLITS, 2, (100.0, 10.0)).c == 10.0  # whatever the grid's order
    assert fit_baseline(SPLITS, 2, (0.01, 1.0)).c == 1.0
    assert fit.features == 22  # 12 words and 10 bigrams of train
    # "awful story": "story" is a positive word of train, and the intercept leans positive
    assert fit.logits["test"].argmax(axis=1).tolist() == [1, 0, 1, 1]


def test_fit_baseline_never_reads_test_before_choosing_c():
    fit = fit_baseline(SPLITS, 2, GRID)
    order = [3, 1, 0, 2]
    altered = Examples([TEST.texts[i] for i in order] + ["awful awful"], [1, 1, 1, 1, 1])
    other = fit_baseline({**SPLITS, "test": altered}, 2, GRID)
    assert (other.c, other.val_accuracy, other.features) == (fit.c, fit.val_accuracy, fit.features)
    np.testing.assert_array_equal(other.logits["val"], fit.logits["val"])
    np.testing.assert_array_equal(other.logits["test"][:4], fit.logits["test"][order])


def test_pair_texts_are_analysed_apart_in_one_vocabulary():
    assert _analyzer()(("Good film", "bad plot")) == [
        "good",
        "film",
        "good film",
        "bad",
        "plot",
        "bad plot",
    ]
    # the label is in the second text alone: the pair's n-grams must reach the classifier
    pairs = {
        name: Examples(["same words"] * len(ex), ex.labels, ex.texts) for name, ex in SPLITS.items()
    }
    fit = fit_baseline(pairs, 2, GRID)
    assert fit.c == 10.0 and fit.val_accuracy[10.0] == 1.0


def test_three_classes_score_every_class_with_lbfgs():
    three = Examples(["good film", "bad film", "odd film"] * 4, [0, 1, 2] * 4)
    fit = fit_baseline({"train": three, "val": three, "test": three}, 3, (1.0, 100.0))
    assert fit.logits["test"].shape == (12, 3)
    assert fit.val_accuracy[100.0] == 1.0


def test_run_baseline_writes_evaluates_keys_and_predictions(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", SPLITS)
    with staged() as out:
        fit, scores = run_baseline(out, prepared, tmp_path / "metrics", RESAMPLES)
    written = json.loads((tmp_path / "metrics" / BASELINE).read_text())
    assert written == scores
    assert set(written) == {"val", "test", "fit"}
    model_val = classification_metrics(fit.logits["val"], np.array(VAL.labels), NAMES)
    model_test = scores_with_intervals(fit.logits["test"], np.array(TEST.labels), RESAMPLES, NAMES)
    assert set(written["val"]) == set(model_val) and set(written["test"]) == set(model_test)
    assert written["fit"]["C"] == fit.c == 4.0 and written["test"]["accuracy"] == 0.75
    assert written["fit"]["val_accuracy_per_C"] == [0.333333, 0.5, 1.0, 1.0, 1.0]
    labels, predicted = read_predictions((tmp_path / "metrics" / BASELINE_PREDICTIONS).read_text())
    assert (labels.tolist(), predicted.tolist()) == (TEST.labels, [1, 0, 1, 1])


def test_stage_prints_one_line_and_a_missing_split_is_one_error(tmp_path, capsys):
    prepared = write_prepared(tmp_path / "prepared", SPLITS)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(Params().to_dict()), encoding="utf-8")
    argv = ["--params", str(params), "--prepared", str(prepared), "--metrics", str(tmp_path / "m")]
    assert stage.main(argv) == 0
    assert capsys.readouterr().out.startswith("TF-IDF + logistic regression, C = ")
    (prepared / "val.jsonl").unlink()
    assert stage.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {prepared / 'val.jsonl'} not found: run `dvc repro prepare` first\n"
    )


@pytest.fixture
def both(tmp_path) -> Path:
    """A metrics folder with the baseline's outputs and a model's, on the same test rows."""
    big = Examples(TEST.texts * 10, TEST.labels * 10)
    prepared = write_prepared(tmp_path / "prepared", {**SPLITS, "test": big})
    metrics = tmp_path / "metrics"
    with staged() as out:
        run_baseline(out, prepared, metrics, RESAMPLES)
    labels = np.array(big.labels)
    model = np.where(np.arange(40) % 8 == 0, 1 - labels, labels)  # 5 wrong of 40
    logits = np.eye(2)[model] * 3.0
    (metrics / PREDICTIONS).write_text(predictions_csv(logits, labels))
    scores = {"test": scores_with_intervals(logits, labels, RESAMPLES, NAMES)}
    write_json(metrics / "eval.json", scores)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(Params().to_dict()), encoding="utf-8")
    return tmp_path


def test_compare_prints_the_paired_tests_p_on_the_same_rows(both, monkeypatch, capsys):
    metrics = both / "metrics"
    read = lambda name: read_predictions((metrics / name).read_text())  # noqa: E731
    expected = pair(read(BASELINE_PREDICTIONS), read(PREDICTIONS), 2000, 2)
    lines, paired = compare_lines(metrics, 2000)
    assert paired == expected and (paired.fixed, paired.broken) == (10, 5)
    code, out, err = lora(monkeypatch, capsys, both, "compare", "--metrics", "metrics")
    assert (code, err) == (0, "")
    assert out.splitlines() == lines
    assert lines[0] == (
        "test accuracy: model 0.8750 [0.7750, 0.9750] vs TF-IDF 0.7500 [0.6250, 0.8750]: "
        f"+12.5 points, McNemar p = {expected.p_value:.4g} (40 paired rows)"
    )
    # 15 discordant rows, 10 to 5: twice P(Binomial(15, 1/2) <= 5)
    assert expected.p_value == 2 * sum(math.comb(15, k) for k in range(6)) / 2**15


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda m: (m / BASELINE).unlink(), BASELINE),
        (lambda m: (m / "eval.json").write_text("{"), "eval.json"),
        (lambda m: (m / "eval.json").write_text('{"test": {}}'), "eval.json"),
        (lambda m: (m / BASELINE_PREDICTIONS).write_text("index,label\n"), BASELINE_PREDICTIONS),
        (
            lambda m: (m / PREDICTIONS).write_text(
                "index,label,predicted,probability\n0,1,1,0.5\n"
            ),
            PREDICTIONS,
        ),
    ],
)
def test_compare_bad_input_is_one_line_naming_the_file(both, monkeypatch, capsys, damage, named):
    damage(both / "metrics")
    code, out, err = lora(monkeypatch, capsys, both, "compare", "--metrics", "metrics")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and f"metrics/{named}" in err
