"""Texts (or sentence pairs) in, each class's probability out: the scoring that
`lora-sst2 predict` and the Python API (``lora_core.load``) share, on the inference path
evaluate uses (lora_core/inference.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lora_core.config import load_params
from lora_core.errors import LoraSst2Error, shown
from lora_core.inference import load_for_inference
from lora_core.metrics import softmax
from lora_core.pretrained import BASE_DIR, load_tokenizer
from lora_core.tokens import tokenize


class Predictor:
    """A merged model and its tokenizer: texts in, each class's probability out."""

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
        self.truncation = self.inference.config.truncation  # as tokenize cut its data
        self.labels = tuple(self.inference.config.labels)  # class i is labels[i]
        self.text_columns = tuple(self.inference.config.text_columns)  # two: sentence pairs
        self.tokenizer = load_tokenizer(self.inference.config.base_model, base_dir)

    def probabilities(
        self, texts: list[str], pairs: list[str] | None = None
    ) -> tuple[np.ndarray, int]:
        """Each class's probability per input (n, len(labels)), and how many inputs were
        truncated; ``pairs`` holds each input's second text, for a sentence-pair adapter."""
        if (pairs is not None) != (len(self.text_columns) == 2):
            kind = "sentence pairs" if pairs is None else "single texts, not pairs"
            raise LoraSst2Error(f"this adapter scores {kind} ({', '.join(self.text_columns)})")
        length, cut = self.max_length, self.truncation
        split, full = tokenize(self.tokenizer, texts, [0] * len(texts), length, pairs, cut)
        return softmax(self.inference.logits(split)), int((full > self.max_length).sum())

    def predictions(
        self, texts: list[str], pairs: list[str] | None = None
    ) -> tuple[list[dict], int]:
        """One ``prediction`` per input, and how many inputs were truncated."""
        probs, truncated = self.probabilities(texts, pairs)
        seconds = pairs if pairs is not None else [None] * len(texts)
        rows = [prediction(t, row, self.labels, p) for t, p, row in zip(texts, seconds, probs)]
        return rows, truncated

    def predict(self, texts: str | Sequence[str] | Sequence[tuple[str, str]]) -> list[dict]:
        """One ``prediction`` per text: a list of texts, or of (text, text_pair) tuples for a
        sentence-pair adapter; a lone string is one text."""
        firsts, seconds = split_inputs(texts, len(self.text_columns) == 2)
        return self.predictions(firsts, seconds)[0]


def split_inputs(
    texts: str | Sequence[str] | Sequence[tuple[str, str]], paired: bool
) -> tuple[list[str], list[str] | None]:
    """The first texts, and the second ones when ``paired``; every text must hold some text."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise LoraSst2Error("no input: give a list of texts")
    for number, item in enumerate(items, start=1):
        parts = (item,) if isinstance(item, str) else tuple(item)
        if len(parts) != (2 if paired else 1) or not all(isinstance(p, str) for p in parts):
            kind = "a (text, text_pair) tuple" if paired else "a string"
            raise LoraSst2Error(f"input {number} is {shown(item)}: this adapter scores {kind}")
        if not all(p.strip() for p in parts):
            raise LoraSst2Error(f"input {number} is empty: every input needs some text")
    if not paired:
        return items, None
    return [a for a, _ in items], [b for _, b in items]


def prediction(
    text: str, probs: np.ndarray, labels: tuple[str, ...], text_pair: str | None = None
) -> dict:
    """The most probable label, its probability as ``score`` (what transformers' pipeline
    calls the score), and every label's probability; a pair's second text as ``text_pair``."""
    best = int(np.argmax(probs))
    return {
        "text": text,
        **({} if text_pair is None else {"text_pair": text_pair}),
        "label": labels[best],
        "score": float(probs[best]),
        "probabilities": {label: float(p) for label, p in zip(labels, probs)},
    }
