"""Tokenized splits on disk: unpadded ids, length-bucketed batches, and padding per batch."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from lora_core.data import DataError


def split_file(folder: str | Path, name: str) -> Path:
    """Where the tokenized split ``name`` (train, val, test) lives in ``folder``."""
    return Path(folder) / f"{name}.safetensors"


@dataclass(frozen=True)
class TokenizedSplit:
    """Unpadded token ids of one split, flat: example i is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (n + 1,) int64
    labels: np.ndarray  # (n,) int64
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenize(tokenizer, sentences: list[str], labels: list[int], max_length: int) -> TokenizedSplit:
    """Token ids with special tokens, truncated to ``max_length``, unpadded."""
    encoded = tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.fromiter((t for ids in encoded for t in ids), dtype=np.int32, count=int(offsets[-1]))
    return TokenizedSplit(ids, offsets, np.asarray(labels, dtype=np.int64), tokenizer.pad_token_id)


def save_tokenized(
    folder: str | Path, name: str, split: TokenizedSplit, metadata: dict[str, str]
) -> None:
    """Write a split as safetensors, byte-identical for identical input."""
    tensors = {"ids": split.ids, "offsets": split.offsets, "labels": split.labels}
    # safetensors writes metadata keys in hash order: one key holding sorted JSON is stable.
    info = json.dumps({**metadata, "pad_id": split.pad_id}, sort_keys=True)
    save_file(tensors, str(split_file(folder, name)), metadata={"info": info})


def load_tokenized(folder: str | Path, name: str) -> TokenizedSplit:
    """Read the split ``name`` that ``save_tokenized`` wrote into ``folder``."""
    from safetensors import SafetensorError, safe_open

    path = split_file(folder, name)
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro tokenize` first")
    try:
        with safe_open(str(path), framework="numpy") as f:
            info = json.loads((f.metadata() or {}).get("info", "{}"))
        t = load_file(str(path))
        split = TokenizedSplit(t["ids"], t["offsets"], t["labels"], int(info.get("pad_id", 0)))
    except (SafetensorError, KeyError, ValueError, TypeError, AttributeError) as err:
        raise DataError(
            f"{path} is damaged ({type(err).__name__}): run `dvc repro --force tokenize`"
        ) from None
    if len(split.offsets) != len(split) + 1 or split.offsets[-1] != len(split.ids):
        raise DataError(f"{path} is damaged (offsets): run `dvc repro --force tokenize`")
    return split


def bucket_batches(
    lengths: np.ndarray, batch_size: int, chunk_batches: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """Length-bucketed training batches: every index once, deterministic for (seed, epoch).

    Shuffle, cut into chunks of ``chunk_batches * batch_size``, sort each chunk by length,
    cut it into batches, then shuffle the batch order. Similar lengths share a batch, so
    little compute goes to padding, while the data order stays random.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def count_bucket_batches(n: int, batch_size: int, chunk_batches: int) -> int:
    """How many batches ``bucket_batches`` makes of ``n`` examples, without shuffling."""
    chunk = batch_size * chunk_batches
    return n // chunk * chunk_batches + math.ceil(n % chunk / batch_size)


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches: indices sorted by length, so padding is minimal."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(split: TokenizedSplit, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to their longest: input_ids, attention_mask, labels."""
    lengths = split.lengths[indices]
    width = int(lengths.max())
    input_ids = np.full((len(indices), width), split.pad_id, dtype=np.int64)
    for row, (i, n) in enumerate(zip(indices, lengths)):
        start = split.offsets[i]
        input_ids[row, :n] = split.ids[start : start + n]
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)  # (B, T)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(split.labels[indices]),
    }
