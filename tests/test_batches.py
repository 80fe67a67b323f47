"""Batches of a tokenized split: length-bucketed for training, sorted for scoring, padded."""

import numpy as np
import pytest
import torch

from lora_core.batches import (
    bucket_batches,
    collate,
    count_bucket_batches,
    epoch_steps,
    sorted_batches,
)
from lora_core.config import TrainConfig
from lora_core.tokens import TokenizedSplit

LENGTHS = np.random.default_rng(0).integers(3, 60, size=1000)


def test_bucket_batches_cover_every_example_once_per_epoch():
    batches = bucket_batches(LENGTHS, batch_size=32, chunk_batches=4, seed=1, epoch=1)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert [len(b) for b in batches].count(32) == len(batches) - 1 + (1000 % 32 == 0)


def test_bucket_batches_are_deterministic_per_seed_and_epoch():
    a = bucket_batches(LENGTHS, 32, 4, seed=1, epoch=1)
    b = bucket_batches(LENGTHS, 32, 4, seed=1, epoch=1)
    c = bucket_batches(LENGTHS, 32, 4, seed=1, epoch=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_bucket_batches_sort_by_length_within_a_chunk():
    # One chunk holds everything: batches, put back in order, must be sorted by length.
    batches = bucket_batches(LENGTHS, 32, chunk_batches=1000, seed=0, epoch=1)
    for batch in batches:
        assert np.all(np.diff(LENGTHS[batch]) >= 0)
    spans = sorted((LENGTHS[b].min(), LENGTHS[b].max()) for b in batches)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    padding_random = sum(
        (LENGTHS[b].max() - LENGTHS[b]).sum() for b in np.array_split(np.arange(1000), 32)
    )
    padding_bucketed = sum((LENGTHS[b].max() - LENGTHS[b]).sum() for b in batches)
    assert padding_bucketed < padding_random / 10


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 127, 128, 129, 1000])
@pytest.mark.parametrize(("batch_size", "chunk_batches"), [(1, 1), (32, 1), (32, 4), (7, 3)])
def test_count_bucket_batches_matches_the_batches_made(n, batch_size, chunk_batches):
    batches = bucket_batches(np.ones(n, dtype=np.int64), batch_size, chunk_batches, 0, 1)
    assert count_bucket_batches(n, batch_size, chunk_batches) == len(batches)
    cfg = TrainConfig(batch_size=batch_size, bucket_chunk=chunk_batches)
    assert epoch_steps(n, cfg) == len(batches)


def test_sorted_batches_and_collate_pad_per_batch():
    # three examples of 3, 5 and 4 tokens, flat; pad id 9
    ids = np.array([1, 2, 3, 1, 4, 5, 6, 3, 1, 7, 8, 3], dtype=np.int32)
    split = TokenizedSplit(ids, np.array([0, 3, 8, 12]), np.array([1, 0, 1]), pad_id=9)
    batches = sorted_batches(split.lengths, batch_size=2)
    assert [b.tolist() for b in batches] == [[0, 2], [1]]
    batch = collate(split, batches[0])
    assert sorted(batch) == ["attention_mask", "input_ids", "labels"]  # no pair: no type ids
    assert batch["input_ids"].tolist() == [[1, 2, 3, 9], [1, 7, 8, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert torch.equal(batch["labels"], torch.tensor([1, 1]))
    assert collate(split, batches[1])["input_ids"].tolist() == [[1, 4, 5, 6, 3]]
