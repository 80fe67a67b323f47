"""SST-2 data: read and validate GLUE TSVs (local mirror or hub), split, summarize. No torch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lora_core.errors import LoraSst2Error
from lora_core.files import atomic_write_text, decode_utf8, quiet_hub

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
    lines = decode_utf8(raw, str(path), DataError).splitlines()
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
        write_glue_tsv(paths[split], Examples(list(rows["sentence"]), list(rows["label"])))
    return paths


def split_train_val(
    examples: Examples, val_fraction: float, seed: int, max_train: int | None = None
) -> tuple[Examples, Examples]:
    """Seeded, stratified split; ``max_train`` caps the training part (after the split)."""
    train_idx, val_idx = _stratified(np.arange(len(examples)), examples, val_fraction, seed)
    if max_train is not None:
        train_idx = train_idx[:max_train]
    return examples.subset(train_idx.tolist()), examples.subset(val_idx.tolist())


def _stratified(indices: np.ndarray, examples: Examples, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    labels = [examples.labels[i] for i in indices]
    try:
        return train_test_split(indices, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as err:
        raise DataError(f"cannot split {len(indices)} examples: {err}") from None


def _spans(tokens: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every contiguous run of ``tokens``, itself included."""
    return (tokens[i:j] for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1))


def sentence_split(
    examples: Examples, val_fraction: float, seed: int, max_train: int | None = None
) -> tuple[Examples, Examples, int]:
    """Val = whole sentences only; train = every phrase that is in no val sentence.

    GLUE's SST-2 train holds phrases cut from the parse trees of its sentences. A sentence
    is a phrase contained in no other phrase (as a run of tokens). ``val_fraction`` of the
    sentences (seeded, stratified) become val; a phrase inside any of them leaves train, so
    no val text was seen in training. Returns (train, val, phrases dropped from train).
    """
    tokens = [tuple(s.split()) for s in examples.sentences]  # (n,) token tuples
    phrases = set(tokens)
    inner = {span for t in phrases for span in _spans(t) if span != t and span in phrases}
    sentences = np.array([i for i, t in enumerate(tokens) if t not in inner])
    _, val_idx = _stratified(sentences, examples, val_fraction, seed)
    seen_in_val = {span for i in val_idx for span in _spans(tokens[i])}
    kept = [i for i, t in enumerate(tokens) if t not in seen_in_val]
    dropped = len(tokens) - len(val_idx) - len(kept)
    kept = np.random.default_rng(seed).permutation(kept)[:max_train]  # a cap takes a sample
    return examples.subset(kept.tolist()), examples.subset(val_idx.tolist()), dropped


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summarize(splits: dict[str, Examples]) -> dict:
    """Rows and label balance per split."""
    return {
        name: {"rows": len(ex), "positive": sum(ex.labels), "negative": len(ex) - sum(ex.labels)}
        for name, ex in splits.items()
    }
