"""`lora-sst2 predict`: sentences in, label and its probability out, scored as evaluate scores."""

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
from lora_core.pretrained import BASE_DIR, load_tokenizer
from lora_core.runtime import load_for_inference
from lora_core.tokens import tokenize

STDIN = "-"  # as a --file, or as the only sentence: read standard input


class Predictor:
    """A merged model and its tokenizer: sentences in, each class's probability out."""

    def __init__(
        self,
        adapter_dir: str | Path = "models",
        params: str | Path | None = None,
        base_dir: str | Path = BASE_DIR,
    ):
        # The evaluate stage's load: same base model check, device, precision and batches.
        project = load_params(params) if params is not None else None
        self.inference = load_for_inference(adapter_dir, project, base_dir)
        self.max_length = self.inference.config.max_length
        self.labels = tuple(self.inference.config.labels)  # class i is labels[i]
        self.tokenizer = load_tokenizer(self.inference.config.base_model, base_dir)

    def probabilities(self, sentences: list[str]) -> tuple[np.ndarray, int]:
        """Each class's probability per sentence (n, len(labels)), and how many sentences
        were truncated."""
        split = tokenize(self.tokenizer, sentences, [0] * len(sentences), self.max_length)
        # Only a sentence that fills max_length can have been cut: re-tokenize just those.
        at_limit = [s for s, n in zip(sentences, split.lengths) if n == self.max_length]
        full = (
            self.tokenizer(at_limit, truncation=False, verbose=False)["input_ids"]
            if at_limit
            else []
        )
        truncated = sum(len(ids) > self.max_length for ids in full)
        return softmax(self.inference.logits(split)), truncated

    def predictions(self, sentences: list[str]) -> tuple[list[dict], int]:
        """One ``prediction`` per sentence, and how many sentences were truncated."""
        probs, truncated = self.probabilities(sentences)
        return [prediction(t, row, self.labels) for t, row in zip(sentences, probs)], truncated


def prediction(text: str, probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    """The most probable label, its probability as ``score`` (what transformers' pipeline
    calls the score), and every label's probability."""
    best = int(np.argmax(probs))
    return {
        "text": text,
        "label": labels[best],
        "score": float(probs[best]),
        "probabilities": {label: float(p) for label, p in zip(labels, probs)},
    }


def json_line(row: dict) -> str:
    """A prediction as one JSON line, probabilities rounded to 6 digits."""
    rounded = {label: round(p, 6) for label, p in row["probabilities"].items()}
    return json.dumps({**row, "score": round(row["score"], 6), "probabilities": rounded})


def read_inputs(texts: list[str], file: str | None) -> list[str]:
    """Sentences from the arguments or from a file (one a line); '-' reads stdin."""
    if file is not None and texts:
        raise LoraSst2Error("give sentences as arguments or with --file, not both")
    if STDIN in texts:
        if len(texts) > 1:
            raise LoraSst2Error(
                "'-' reads the sentences from standard input: give it alone, not among sentences"
            )
        file, texts = STDIN, []
    if file is not None:
        return _read_file(file)
    if not texts:
        raise LoraSst2Error("no input: give sentences as arguments or with --file PATH")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise LoraSst2Error(f"input {number} is empty: every input needs some text")
    return texts


def _read_file(file: str) -> list[str]:
    """The file's sentences: some text, and no blank line but at the end."""
    lines = _read_lines(file)
    if not lines:
        name = "standard input" if file == STDIN else f"--file {file}"
        raise LoraSst2Error(f"{name} has no text: expected one sentence a line")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            where = "<stdin>" if file == STDIN else file
            raise LoraSst2Error(
                f"{where}:{number}: empty line; give one sentence a line "
                "(blank lines at the end are ignored)"
            )
    return lines


def _read_lines(file: str) -> list[str]:
    """The file's lines: a UTF-8 BOM dropped, trailing blank lines ignored."""
    path = Path(file)
    if file != STDIN and path.is_dir():
        raise LoraSst2Error(f"--file {file} is a directory, expected a text file")
    try:
        data = sys.stdin.buffer.read() if file == STDIN else path.read_bytes()
    except OSError as err:
        raise LoraSst2Error(f"cannot read --file {file}: {err.strerror}") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise LoraSst2Error(f"--file {file} contains a NUL byte (line {line}): expected text")
    lines = decode_utf8(data, f"--file {file}").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def params_file(args: argparse.Namespace) -> str | None:
    """The --params the user gave (it must exist), else the project's params.yaml if any."""
    defaulted = "params" in getattr(args, "defaulted", ())
    return None if defaulted and not Path(args.params).exists() else args.params


def run_predict(args: argparse.Namespace) -> int:
    texts = read_inputs(args.texts, args.file)
    predictor = Predictor(args.adapter, params_file(args), args.base_dir)
    rows, truncated = predictor.predictions(texts)
    if truncated:
        print(
            f"note: {truncated} input(s) truncated to {predictor.max_length} tokens",
            file=sys.stderr,
        )
    for row in rows:
        if args.json:
            print(json_line(row))
        else:
            print(f"{row['label']}\t{row['score']:.4f}\t{row['text']}")
    return 0


def register(subparsers) -> None:
    """Add `predict` to the CLI."""
    p = subparsers.add_parser("predict", help="score sentences with the trained adapter")
    p.add_argument("texts", nargs="*", help="sentences to score; a lone '-' reads stdin")
    p.add_argument("--file", help="one sentence a line; '-' reads stdin")
    p.add_argument(
        "--json",
        action="store_true",
        help="JSON lines: text, label, score (the label's probability), probabilities",
    )
    p.add_argument(
        "--adapter", help="folder with adapter.* or PEFT's files (default: the project's models/)"
    )
    p.add_argument(
        "--params", help="device and evaluate settings (default: the project's params.yaml)"
    )
    p.set_defaults(run=run_predict, project_defaults={"adapter": "models", "params": "params.yaml"})
