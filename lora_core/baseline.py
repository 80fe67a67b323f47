"""The reference a LoRA run must beat: TF-IDF + logistic regression on the prepared splits.

Fit on train, C chosen on val alone (test is scored once, after), scored as evaluate scores
the model (metrics.py, scores.py) so metrics/baseline.json has eval.json's keys. No torch and
no LoRA code: a LoRA or training edit never re-runs the baseline stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lora_core import metrics as m
from lora_core.data import SPLITS, Examples, read_examples, read_summary
from lora_core.errors import DataError
from lora_core.files import Staged, json_text
from lora_core.scores import predictions_csv, scores_with_intervals

NGRAMS = (1, 2)  # word unigrams and bigrams, sublinear tf: the classic strong baseline
C_GRID = (0.25, 1.0, 4.0, 16.0, 64.0)  # inverse L2 strength; ties go to the smaller C
SEED = 0  # liblinear's; lbfgs draws nothing: the same data give the same bytes
BASELINE = "baseline.json"  # under metrics/
BASELINE_PREDICTIONS = "predictions/baseline_test.csv"  # beside evaluate's test.csv


@dataclass(frozen=True)
class Baseline:
    """The chosen C, every C's val accuracy, and the chosen model's logits per split."""

    c: float
    val_accuracy: dict[float, float]  # C -> accuracy on val, in grid order
    features: int
    logits: dict[str, np.ndarray]  # "val", "test" -> (n, classes); softmax = predict_proba


def _analyzer():
    """Texts -> one list of word n-grams. A pair's texts are analysed apart and their
    n-grams pooled in one vocabulary: no bigram spans the two texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(ngram_range=NGRAMS).build_analyzer()
    return lambda texts: [gram for text in texts for gram in words(text)]


def _texts(examples: Examples) -> list[tuple[str, ...]]:
    pairs = examples.pairs or [None] * len(examples)
    return [(t,) if p is None else (t, p) for t, p in zip(examples.texts, pairs)]


def _logits(model, x, classes: int) -> np.ndarray:
    """(n, classes) scores whose softmax is the model's predict_proba; a class train lacks
    scores -inf (probability 0)."""
    scores = model.decision_function(x)
    if scores.ndim == 1:  # two classes: P(class 1) = sigmoid(d) = softmax([0, d])[1]
        scores = np.stack([np.zeros_like(scores), scores], axis=1)
    logits = np.full((len(scores), classes), -np.inf)
    logits[:, model.classes_] = scores
    return logits


def _classifier(c: float, classes: int):
    from sklearn.linear_model import LogisticRegression

    # liblinear is the fast exact solver for two classes; it has no multinomial loss
    solver = "liblinear" if classes == 2 else "lbfgs"
    return LogisticRegression(C=c, solver=solver, max_iter=1000, random_state=SEED)


def fit_baseline(
    splits: dict[str, Examples], classes: int, grid: tuple[float, ...] = C_GRID
) -> Baseline:
    """Fit on train for each C of ``grid``, keep the best val accuracy (the smaller C of a tie),
    then score test with it. Test's rows are not touched before C is chosen."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train = splits["train"]
    if len(set(train.labels)) < 2:
        raise DataError("the prepared train split has one class: a classifier needs two")
    vectorizer = TfidfVectorizer(analyzer=_analyzer(), sublinear_tf=True)
    x_train = vectorizer.fit_transform(_texts(train))
    x_val, y_val = vectorizer.transform(_texts(splits["val"])), np.asarray(splits["val"].labels)
    fitted = {c: _classifier(c, classes).fit(x_train, train.labels) for c in grid}
    val = {c: m.accuracy(_logits(f, x_val, classes), y_val) for c, f in fitted.items()}
    best = min(c for c in grid if val[c] == max(val.values()))  # a tie: the stronger penalty
    x_test = vectorizer.transform(_texts(splits["test"]))
    logits = {"val": _logits(fitted[best], x_val, classes)}
    logits["test"] = _logits(fitted[best], x_test, classes)
    return Baseline(best, val, x_train.shape[1], logits)


def run_baseline(
    out: Staged, prepared: str | Path, metrics_dir: str | Path, resamples: int
) -> tuple[Baseline, dict]:
    """Read data/prepared, fit, and stage metrics/baseline.json (val and test as eval.json
    has them, plus the fit) and the test predictions. The outputs are reserved first: a
    folder that cannot be written fails before the fit."""
    paths = [out.file(Path(metrics_dir) / name) for name in (BASELINE_PREDICTIONS, BASELINE)]
    names, _ = read_summary(prepared)
    splits = {s: read_examples(Path(prepared) / f"{s}.jsonl", names) for s in SPLITS}
    fit = fit_baseline(splits, len(names))
    val_labels, test_labels = (np.asarray(splits[s].labels) for s in ("val", "test"))
    scores = {
        "val": m.classification_metrics(fit.logits["val"], val_labels, names),
        "test": scores_with_intervals(fit.logits["test"], test_labels, resamples, names),
        "fit": {
            "C": fit.c,
            "C_grid": list(fit.val_accuracy),
            "val_accuracy_per_C": [round(a, m.DIGITS) for a in fit.val_accuracy.values()],
            "features": fit.features,
        },
    }
    paths[0].write_text(predictions_csv(fit.logits["test"], test_labels), encoding="utf-8")
    paths[1].write_text(json_text(scores), encoding="utf-8")
    return fit, scores
