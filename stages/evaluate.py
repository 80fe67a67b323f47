"""Stage evaluate: base model + adapter -> val/test metrics, DVC plot data and PNGs."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from lora_core import metrics as m
from lora_core.adapter import load_trained
from lora_core.config import Params, load_params
from lora_core.data import load_tokenized
from lora_core.errors import exit_on_user_error
from lora_core.inject import merge_lora
from lora_core.io import atomic_dir, write_json
from lora_core.loop import predict_logits, resolve_device, resolve_precision
from lora_core.model import BASE_DIR, LABELS


def evaluate(params: Params, models: str, tokenized: str, base_dir: str = BASE_DIR) -> dict:
    """Logits and metrics for val and test, scored with the merged model."""
    model, _ = load_trained(models, base_dir, expect_base=params.model.name)
    merge_lora(model)  # inference runs on merged weights: one matmul per layer, as in predict
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.evaluate.precision, device)
    model.to(device)
    out = {}
    for name in ("val", "test"):
        split = load_tokenized(Path(tokenized) / f"{name}.safetensors")
        logits = predict_logits(model, split, params.evaluate.batch_size, device, precision)
        out[name] = (logits, split.labels)
    return out


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_outputs(results: dict, metrics_dir: str, plots_dir: str) -> dict:
    """metrics/eval.json and the plots folder (replaced whole)."""
    scores = {name: m.classification_metrics(*results[name]) for name in ("val", "test")}
    test_logits, test_labels = results["test"]
    confusion = m.confusion_points(test_logits, test_labels, LABELS)
    roc, pr = m.roc_points(test_logits, test_labels), m.pr_points(test_logits, test_labels)
    metrics_dir = Path(metrics_dir)
    with atomic_dir(plots_dir) as tmp:
        write_json(tmp / "confusion.json", confusion)
        write_json(tmp / "roc.json", roc)
        write_json(tmp / "pr.json", pr)
        m.plot_confusion(confusion, list(LABELS), tmp / "confusion.png")
        m.plot_curve(
            roc,
            "fpr",
            "tpr",
            f"ROC (test), accuracy {scores['test']['accuracy']:.4f}",
            tmp / "roc.png",
        )
        m.plot_curve(pr, "recall", "precision", "Precision-recall (test)", tmp / "pr.png")
        curve, val = metrics_dir / "train_curve.csv", metrics_dir / "val_curve.csv"
        if curve.exists() and val.exists():
            m.plot_training(_read_csv(curve), _read_csv(val), tmp / "training.png")
    write_json(metrics_dir / "eval.json", scores)
    return scores


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--plots", default="metrics/plots")
    args = parser.parse_args(argv)
    results = evaluate(load_params(args.params), args.models, args.tokenized)
    scores = write_outputs(results, args.metrics, args.plots)
    val, test = scores["val"]["accuracy"], scores["test"]["accuracy"]
    print(f"val accuracy {val:.4f}, test accuracy {test:.4f}")


if __name__ == "__main__":
    sys.exit(main())
