"""SST-2 data: read and validate GLUE TSVs (local or hub), split, tokenize, and batch."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from lora_core.errors import LoraSst2Error
from lora_core.io import atomic_write_text, quiet_hub

RAW_FILES = {"train": "train.tsv", "dev": "dev.tsv"}
SPLITS = ("train", "val", "test")


class DataError(LoraSst2Error):
    """Raw or prepared data that is missing or malformed."""


@dataclass(frozen=True)
class Examples:
    """Sentences and their 0/1 labels."""

    sentences: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Examples:
        return Examples([self.sentences[i] for i in indices], [self.labels[i] for i in indices])


def read_glue_tsv(path: str | Path) -> Examples:
    """Read a GLUE SST-2 TSV (header ``sentence<TAB>label``), validating every row."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a GLUE TSV file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 (at byte {err.start})") from None
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{path} is empty: expected a header 'sentence<TAB>label' and rows")
    header = lines[0].split("\t")
    for column in ("sentence", "label"):
        if column not in header:
            raise DataError(f"{path}: no {column!r} column in header {header}")
    s_col, l_col = header.index("sentence"), header.index("label")
    sentences, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)}")
        if not fields[s_col].strip():
            raise DataError(f"{path}:{number}: empty sentence")
        if fields[l_col] not in ("0", "1"):
            raise DataError(f"{path}:{number}: label {fields[l_col]!r} is not allowed: use 0 or 1")
        sentences.append(fields[s_col])
        labels.append(int(fields[l_col]))
    if not labels:
        raise DataError(f"{path} has a header but no rows")
    return Examples(sentences, labels)


def write_glue_tsv(path: str | Path, examples: Examples) -> None:
    """Write examples as a GLUE TSV, atomically."""
    rows = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in zip(examples.sentences, examples.labels)]
    atomic_write_text(path, "\n".join(rows) + "\n")


def ensure_raw(raw_dir: str | Path, source: str, config: str) -> dict[str, Path]:
    """The raw TSVs in ``raw_dir``; downloaded from the hub and written there if absent."""
    raw_dir = Path(raw_dir)
    paths = {split: raw_dir / name for split, name in RAW_FILES.items()}
    present = [p.exists() for p in paths.values()]
    if all(present):
        return paths
    if any(present):
        missing = ", ".join(str(p) for p in paths.values() if not p.exists())
        raise DataError(f"{missing} missing: {raw_dir}/ needs both train.tsv and dev.tsv")
    try:
        import datasets

        with quiet_hub():
            hub = datasets.load_dataset(source, config)
    except Exception as err:  # offline, unknown id, hub errors: all mean "fill the folder"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(
            f"no {raw_dir}/train.tsv and dev.tsv, and {source}/{config} cannot be "
            f"downloaded ({first}); copy GLUE's SST-2 TSVs into {raw_dir}/ "
            "(README section 'Offline')"
        ) from None
    # One file at a time, so nothing else the folder holds is touched; dev last, as the
    # check above takes both files present to mean a complete mirror.
    for split, hub_split in (("train", "train"), ("dev", "validation")):
        rows = hub[hub_split]
        write_glue_tsv(paths[split], Examples(rows["sentence"], rows["label"]))
    return paths


def split_train_val(
    examples: Examples, val_fraction: float, seed: int, max_train: int | None = None
) -> tuple[Examples, Examples]:
    """Seeded, stratified split; ``max_train`` caps the training part (after the split)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(examples))
    try:
        train_idx, val_idx = train_test_split(
            indices, test_size=val_fraction, random_state=seed, stratify=examples.labels
        )
    except ValueError as err:
        raise DataError(f"cannot split {len(examples)} examples: {err}") from None
    if max_train is not None:
        train_idx = train_idx[:max_train]
    return examples.subset(train_idx.tolist()), examples.subset(val_idx.tolist())


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summarize(splits: dict[str, Examples]) -> dict:
    """Rows and label balance per split."""
    return {
        name: {"rows": len(ex), "positive": sum(ex.labels), "negative": len(ex) - sum(ex.labels)}
        for name, ex in splits.items()
    }


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


def save_tokenized(path: str | Path, split: TokenizedSplit, metadata: dict[str, str]) -> None:
    """Write a split as safetensors, byte-identical for identical input."""
    tensors = {"ids": split.ids, "offsets": split.offsets, "labels": split.labels}
    # safetensors writes metadata keys in hash order: one key holding sorted JSON is stable.
    info = json.dumps({**metadata, "pad_id": split.pad_id}, sort_keys=True)
    save_file(tensors, str(path), metadata={"info": info})


def load_tokenized(path: str | Path) -> TokenizedSplit:
    """Read a split written by ``save_tokenized``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found: run `dvc repro tokenize` first")
    with safe_open(str(path), framework="numpy") as f:
        info = json.loads((f.metadata() or {}).get("info", "{}"))
    t = load_file(str(path))
    return TokenizedSplit(t["ids"], t["offsets"], t["labels"], int(info.get("pad_id", 0)))


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
