"""Inference for users: `lora-sst2 predict`, `export --merged` and `info`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lora_core.adapter import WEIGHTS, load_trained
from lora_core.config import EvaluateConfig, load_params
from lora_core.data import tokenize
from lora_core.errors import LoraSst2Error
from lora_core.inject import count_parameters, merge_lora, unload_lora
from lora_core.io import atomic_dir, check_replaceable
from lora_core.loop import predict_logits, resolve_device, resolve_precision
from lora_core.metrics import softmax
from lora_core.model import LABELS, load_tokenizer


class Predictor:
    """A merged model and its tokenizer: sentences in, P(positive) out."""

    def __init__(self, adapter_dir: str | Path = "models", params: str | Path = "params.yaml"):
        # Same base model, device, precision and batch size as the evaluate stage: same logits.
        project = load_params(params) if Path(params).exists() else None
        expect = project.model.name if project else None
        self.model, self.config = load_trained(adapter_dir, expect_base=expect)
        merge_lora(self.model)  # one matmul per layer, the same weights evaluate scores with
        self.tokenizer = load_tokenizer(self.config["base_model"])
        evaluate = project.evaluate if project else EvaluateConfig()
        self.batch_size = evaluate.batch_size
        self.device = resolve_device("auto")
        self.precision = resolve_precision(evaluate.precision, self.device)
        self.model.to(self.device)

    def probabilities(self, sentences: list[str]) -> tuple[np.ndarray, int]:
        """P(positive) per sentence, and how many sentences were truncated."""
        max_length = self.config["max_length"]
        split = tokenize(self.tokenizer, sentences, [0] * len(sentences), max_length)
        # Only a sentence that fills max_length can have been cut: re-tokenize just those.
        at_limit = [s for s, n in zip(sentences, split.lengths) if n == max_length]
        full = (
            self.tokenizer(at_limit, truncation=False, verbose=False)["input_ids"]
            if at_limit
            else []
        )
        truncated = sum(len(ids) > max_length for ids in full)
        logits = predict_logits(self.model, split, self.batch_size, self.device, self.precision)
        return softmax(logits)[:, 1], truncated


def read_inputs(texts: list[str], file: str | None) -> list[str]:
    """Sentences from the arguments or from a file (one a line, '-' for stdin)."""
    if file is not None and texts:
        raise LoraSst2Error("give sentences as arguments or with --file, not both")
    if file is not None:
        texts = _read_lines(file)
    if not texts:
        raise LoraSst2Error("no input: give sentences as arguments or with --file PATH")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise LoraSst2Error(f"input {number} is empty: every input needs some text")
    return texts


def _read_lines(file: str) -> list[str]:
    path = Path(file)
    if file != "-" and path.is_dir():
        raise LoraSst2Error(f"--file {file} is a directory, expected a text file")
    try:
        data = sys.stdin.buffer.read() if file == "-" else path.read_bytes()
        text = data.decode("utf-8")
    except OSError as err:
        raise LoraSst2Error(f"cannot read --file {file}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise LoraSst2Error(f"--file {file} is not UTF-8 text (binary file?)") from None
    if "\x00" in text:
        raise LoraSst2Error(f"--file {file} is not UTF-8 text (binary file?)")
    return text.splitlines()


def run_predict(args: argparse.Namespace) -> int:
    texts = read_inputs(args.texts, args.file)
    predictor = Predictor(args.adapter, args.params)
    scores, truncated = predictor.probabilities(texts)
    if truncated:
        limit = predictor.config["max_length"]
        print(f"note: {truncated} input(s) truncated to {limit} tokens", file=sys.stderr)
    for text, score in zip(texts, scores):
        label = LABELS[int(score > 0.5)]
        if args.json:
            print(json.dumps({"text": text, "label": label, "score": round(float(score), 6)}))
        else:
            print(f"{label}\t{score:.4f}\t{text}")
    return 0


EXPORT_MARKER = "lora-sst2-export.json"  # marks a folder as ours to replace on a re-export
PIPELINE_DIRS = ("data", "models", "metrics", ".dvc", ".git")


def _project_root(start: Path) -> Path | None:
    return next((p for p in (start, *start.parents) if (p / "dvc.yaml").exists()), None)


def check_export_target(out: str | Path, adapter_dir: str | Path, force: bool) -> None:
    """Refuse an export folder that would replace what the user or the pipeline owns.

    Never the working directory or a folder above it, a project, the adapter's folder, or
    (inside) the pipeline's own folders; a non-empty folder only when an earlier export of
    ours left its marker there, or with ``force``.
    """
    target, root = Path(out).resolve(), _project_root(Path.cwd().resolve())
    owned = [Path(adapter_dir).resolve()] + [root / d for d in PIPELINE_DIRS if root]
    if any(target == p or p in target.parents for p in owned):
        raise LoraSst2Error(
            f"export --merged {out}: that is (inside) a folder the pipeline owns; "
            "choose a new folder outside data/, models/ and metrics/, e.g. exported/"
        )
    check_replaceable(out)
    if target.is_file() or Path(out).is_symlink():
        raise LoraSst2Error(f"export --merged {out}: that is a file or a link, expected a folder")
    ours = force or (target / EXPORT_MARKER).is_file()
    if target.is_dir() and any(target.iterdir()) and not ours:
        raise LoraSst2Error(
            f"export --merged {out}: the folder is not empty and holds no earlier export; "
            "choose a new folder, or add --force to replace it"
        )


def export_merged(adapter_dir: str | Path, out: str | Path, force: bool = False) -> Path:
    """A plain Hugging Face folder: merged weights, config with labels, tokenizer."""
    from transformers.utils import logging as hf_logging

    check_export_target(out, adapter_dir, force)
    model, config = load_trained(adapter_dir)
    merge_lora(model)
    unload_lora(model)
    tokenizer = load_tokenizer(config["base_model"])
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar for one small shard
    try:
        with atomic_dir(out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            marker = {"made_by": "lora-sst2 export --merged", "base_model": config["base_model"]}
            (tmp / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return Path(out)


def run_export(args: argparse.Namespace) -> int:
    out = export_merged(args.adapter, args.merged, args.force)
    print(f"merged model written to {out}/ (load it with AutoModelForSequenceClassification)")
    return 0


def adapter_info(adapter_dir: str | Path, metrics_dir: str | Path) -> dict:
    """What an adapter is, how big, and how well the run that made it did."""
    model, config = load_trained(adapter_dir)
    trainable, total = count_parameters(model)
    info = {
        "base_model": config["base_model"],
        "mode": config["mode"],
        **{k: config["lora"][k] for k in ("r", "alpha", "targets", "dropout", "rslora")},
        "trainable_params": trainable,
        "total_params": total,
        "adapter_bytes": (Path(adapter_dir) / WEIGHTS).stat().st_size,
    }
    eval_path = Path(metrics_dir) / "eval.json"
    if eval_path.exists():
        scores = json.loads(eval_path.read_text(encoding="utf-8"))
        info.update({f"{split}.{k}": v for split in scores for k, v in scores[split].items()})
    return info


def run_info(args: argparse.Namespace) -> int:
    for key, value in adapter_info(args.adapter, args.metrics).items():
        print(f"{key:<20} {value}")
    return 0


def register(subparsers) -> None:
    """Add predict, export and info to the CLI."""
    p = subparsers.add_parser("predict", help="score sentences with the trained adapter")
    p.add_argument("texts", nargs="*", help="sentences to score")
    p.add_argument("--file", help="one sentence a line; '-' reads stdin")
    p.add_argument("--json", action="store_true", help="JSON lines: text, label, score")
    p.add_argument("--adapter", default="models", help="folder with adapter.* (default models)")
    p.add_argument("--params", default="params.yaml", help="evaluate settings to score with")
    p.set_defaults(run=run_predict)

    e = subparsers.add_parser("export", help="write a merged, standalone Hugging Face model")
    e.add_argument("--merged", required=True, metavar="OUT", help="output folder")
    e.add_argument("--adapter", default="models")
    e.add_argument(
        "--force", action="store_true", help="replace OUT even if it holds files not ours"
    )
    e.set_defaults(run=run_export)

    i = subparsers.add_parser("info", help="describe an adapter and its run's metrics")
    i.add_argument("--adapter", default="models")
    i.add_argument("--metrics", default="metrics")
    i.set_defaults(run=run_info)
