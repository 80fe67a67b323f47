"""Batches of a tokenized split: which rows form each (length-bucketed for training, sorted
for scoring), and their tensors, padded per batch."""

from __future__ import annotations

import math

import numpy as np
import torch

from lora_core.config import TrainConfig
from lora_core.tokens import TokenizedSplit


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


def epoch_steps(examples: int, cfg: TrainConfig) -> int:
    """Optimizer steps in one epoch of ``examples``: the bucketed batches train makes."""
    return count_bucket_batches(examples, cfg.batch_size, cfg.bucket_chunk)


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches: indices sorted by length, so padding is minimal."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the model takes from a batch: all but the labels."""
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def collate(split: TokenizedSplit, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to their longest: input_ids, attention_mask, labels,
    and token_type_ids for sentence pairs."""
    lengths = split.lengths[indices]
    width = int(lengths.max())
    input_ids = np.full((len(indices), width), split.pad_id, dtype=np.int64)
    for row, (i, n) in enumerate(zip(indices, lengths)):
        start = split.offsets[i]
        input_ids[row, :n] = split.ids[start : start + n]
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)  # (B, T)
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(split.labels[indices]),
    }
    if split.type_ids is not None:  # sentence pairs: segment 0, then 1; padding 0
        types = np.zeros((len(indices), width), dtype=np.int64)
        for row, (i, n) in enumerate(zip(indices, lengths)):
            types[row, :n] = split.type_ids[split.offsets[i] : split.offsets[i] + n]
        batch["token_type_ids"] = torch.from_numpy(types)
    return batch
