"""`lora-sst2 predict`: sentences in, label and P(positive) out, scored as evaluate scores."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lora_core.config import load_params
from lora_core.errors import LoraSst2Error
from lora_core.files import decode_utf8
from lora_core.metrics import softmax
from lora_core.pretrained import LABELS, load_tokenizer
from lora_core.runtime import load_for_inference
from lora_core.tokens import tokenize


class Predictor:
    """A merged model and its tokenizer: sentences in, P(positive) out."""

    def __init__(self, adapter_dir: str | Path = "models", params: str | Path = "params.yaml"):
        # The evaluate stage's load: same base model check, device, precision and batches.
        project = load_params(params) if Path(params).exists() else None
        self.inference = load_for_inference(adapter_dir, project)
        self.max_length = self.inference.config.max_length
        self.tokenizer = load_tokenizer(self.inference.config.base_model)

    def probabilities(self, sentences: list[str]) -> tuple[np.ndarray, int]:
        """P(positive) per sentence, and how many sentences were truncated."""
        split = tokenize(self.tokenizer, sentences, [0] * len(sentences), self.max_length)
        # Only a sentence that fills max_length can have been cut: re-tokenize just those.
        at_limit = [s for s, n in zip(sentences, split.lengths) if n == self.max_length]
        full = (
            self.tokenizer(at_limit, truncation=False, verbose=False)["input_ids"]
            if at_limit
            else []
        )
        truncated = sum(len(ids) > self.max_length for ids in full)
        return softmax(self.inference.logits(split))[:, 1], truncated


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
    """The file's lines: a UTF-8 BOM dropped, trailing blank lines ignored."""
    path = Path(file)
    if file != "-" and path.is_dir():
        raise LoraSst2Error(f"--file {file} is a directory, expected a text file")
    try:
        data = sys.stdin.buffer.read() if file == "-" else path.read_bytes()
    except OSError as err:
        raise LoraSst2Error(f"cannot read --file {file}: {err.strerror}") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise LoraSst2Error(f"--file {file} contains a NUL byte (line {line}): expected text")
    lines = decode_utf8(data, f"--file {file}").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def run_predict(args: argparse.Namespace) -> int:
    texts = read_inputs(args.texts, args.file)
    predictor = Predictor(args.adapter, args.params)
    scores, truncated = predictor.probabilities(texts)
    if truncated:
        print(
            f"note: {truncated} input(s) truncated to {predictor.max_length} tokens",
            file=sys.stderr,
        )
    for text, score in zip(texts, scores):
        label = LABELS[int(score > 0.5)]
        if args.json:
            print(json.dumps({"text": text, "label": label, "score": round(float(score), 6)}))
        else:
            print(f"{label}\t{score:.4f}\t{text}")
    return 0


def register(subparsers) -> None:
    """Add `predict` to the CLI."""
    p = subparsers.add_parser("predict", help="score sentences with the trained adapter")
    p.add_argument("texts", nargs="*", help="sentences to score")
    p.add_argument("--file", help="one sentence a line; '-' reads stdin")
    p.add_argument("--json", action="store_true", help="JSON lines: text, label, score")
    p.add_argument("--adapter", default="models", help="folder with adapter.* (default models)")
    p.add_argument("--params", default="params.yaml", help="device and evaluate settings")
    p.set_defaults(run=run_predict)
