"""Tokenized splits on disk: unpadded ids and their lengths, the task beside them. No torch:
batches.py cuts and pads batches of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from lora_core.config import TRUNCATIONS
from lora_core.errors import DataError, damaged, shown


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
    type_ids: np.ndarray | None = None  # (total_tokens,) int8, for sentence pairs only

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def first(self, n: int) -> TokenizedSplit:
        """The first ``n`` examples (all of them when the split has fewer)."""
        n = min(n, len(self))
        end = int(self.offsets[n])
        types = None if self.type_ids is None else self.type_ids[:end]
        return TokenizedSplit(
            self.ids[:end], self.offsets[: n + 1], self.labels[:n], self.pad_id, types
        )


CHUNK = 4096  # rows tokenized at once: a million rows never sit in memory as Python lists
# ... and at most this many characters: the fast tokenizer holds about 20 MiB for one text
# of 90,000 characters (its cut windows, kept as overflow), so 4,096 texts near the cap
# would need 80 GB; SST-2's chunks (about 100 characters a text) are cut by rows alone.
CHUNK_CHARS = 2_000_000


def tokenize(
    tokenizer,
    texts: list[str],
    labels: list[int],
    max_length: int,
    pairs: list[str] | None = None,
    truncation: str = "head",
) -> tuple[TokenizedSplit, np.ndarray]:
    """Token ids with special tokens, truncated to ``max_length`` (a pair: the longer text
    first; a single text with ``head+tail``: its head and tail, see ``head_tail``),
    unpadded; and each text's length before truncation."""
    if pairs is not None and truncation != "head":
        raise DataError(f"truncation {truncation} is for single texts: pairs cut longest_first")
    ids, types, lengths, full = [], [], [], []
    for rows in chunks(texts, pairs):
        part = texts[rows]
        second = None if pairs is None else pairs[rows]
        encoded = tokenizer(part, second, truncation="longest_first", max_length=max_length)
        rows = encoded["input_ids"]
        lengths.append(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)))
        if truncation == "head":
            full.append(_untruncated(tokenizer, encoded, part, second, lengths[-1]))
        else:
            rows, whole = _keep_tails(tokenizer, encoded, part, max_length, lengths[-1])
            full.append(whole)
        ids.append(np.fromiter((t for r in rows for t in r), dtype=np.int32))
        if pairs is not None and "token_type_ids" in encoded:  # RoBERTa's family has none
            types.append(np.fromiter((t for r in encoded["token_type_ids"] for t in r), np.int8))
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    split = TokenizedSplit(
        np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32),
        offsets,
        np.asarray(labels, dtype=np.int64),
        tokenizer.pad_token_id,
        np.concatenate(types) if types else None,
    )
    return split, (np.concatenate(full) if full else lengths)


def chunks(texts: list[str], pairs: list[str] | None = None) -> Iterator[slice]:
    """Consecutive slices of at most CHUNK rows and, past one row, CHUNK_CHARS characters:
    each row is tokenized alone, so the cut changes memory, never the ids."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text) + (0 if pairs is None else len(pairs[i]))
        if i + 1 - start == CHUNK or size >= CHUNK_CHARS:
            yield slice(start, i + 1)
            start, size = i + 1, 0
    if start < len(texts):
        yield slice(start, len(texts))


def head_tail(content: list[int], budget: int) -> list[int]:
    """The first quarter of ``budget`` tokens and the last three quarters, when ``content``
    is longer (Sun et al., 2019, kept 128 + 382 of 510); else ``content`` unchanged."""
    if len(content) <= budget:
        return content
    head = budget // 4
    return content[:head] + content[len(content) - (budget - head) :]


def _keep_tails(tokenizer, encoded, texts, max_length: int, lengths: np.ndarray):
    """``head_tail`` in place of the head cut, for the rows the tokenizer cut (each tokenized
    again whole, without special tokens, which stay where the cut row has them); and each
    row's length before truncation."""
    rows = list(encoded["input_ids"])
    cut = [i for i, e in enumerate(encoded.encodings) if e.overflowing]
    if not cut:
        return rows, lengths
    again = tokenizer(
        [texts[i] for i in cut], add_special_tokens=False, truncation=False, verbose=False
    )["input_ids"]
    full = lengths.copy()
    for i, content in zip(cut, again):
        mask = encoded.encodings[i].special_tokens_mask
        kept = [j for j, special in enumerate(mask) if not special]
        full[i] = len(content) + len(mask) - len(kept)
        if kept:  # else max_length leaves no room for text: the special tokens alone
            row = rows[i]
            rows[i] = row[: kept[0]] + head_tail(content, len(kept)) + row[kept[-1] + 1 :]
    return rows, full


def _untruncated(tokenizer, encoded, texts, pairs, lengths: np.ndarray) -> np.ndarray:
    """Each row's token count before truncation: only the rows that were cut (the fast
    tokenizer keeps what it cut) are tokenized again, whole."""
    cut = [i for i, e in enumerate(encoded.encodings) if e.overflowing]
    if not cut:
        return lengths
    again = tokenizer(
        [texts[i] for i in cut],
        None if pairs is None else [pairs[i] for i in cut],
        truncation=False,
        verbose=False,
    )["input_ids"]
    full = lengths.copy()
    full[cut] = [len(r) for r in again]
    return full


def length_summary(split: TokenizedSplit, full: np.ndarray, max_length: int) -> dict:
    """How many texts were cut to ``max_length``, and percentiles of their whole lengths."""
    cut = int((full > max_length).sum())
    p50, p90, p99 = (int(v) for v in np.percentile(full, [50, 90, 99], method="higher"))
    return {
        "rows": len(split),
        "tokens": int(split.offsets[-1]),
        "truncated": cut,
        "truncated_percent": round(100 * cut / max(len(split), 1), 2),
        "length_p50": p50,
        "length_p90": p90,
        "length_p99": p99,
        "length_max": int(full.max()),
    }


def save_tokenized(
    folder: str | Path, name: str, split: TokenizedSplit, metadata: dict[str, str]
) -> None:
    """Write a split as safetensors, byte-identical for identical input."""
    tensors = {"ids": split.ids, "offsets": split.offsets, "labels": split.labels}
    if split.type_ids is not None:
        tensors["type_ids"] = split.type_ids
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
        pad = int(info.get("pad_id", 0))
        split = TokenizedSplit(t["ids"], t["offsets"], t["labels"], pad, t.get("type_ids"))
    except (SafetensorError, KeyError, ValueError, TypeError, AttributeError):
        raise damaged(path, "tokenize") from None
    if len(split.offsets) != len(split) + 1 or split.offsets[-1] != len(split.ids):
        raise damaged(path, "tokenize")
    if split.type_ids is not None and len(split.type_ids) != len(split.ids):
        raise damaged(path, "tokenize")
    return split


@dataclass(frozen=True)
class Task:
    """What the tokenized data is for: the class names in id order and the text columns."""

    labels: tuple[str, ...]
    text_columns: tuple[str, ...]
    truncation: str = "head"  # how a long text was cut: model.truncation


TASK = "task.json"


def read_task(folder: str | Path) -> Task:
    """The ``task.json`` that the tokenize stage wrote beside the splits (one written
    without ``truncation`` cut the head: the only way there was)."""
    from lora_core.readers import read_classes, read_written

    path = Path(folder) / TASK
    raw = read_written(path, "tokenize")
    names, columns = read_classes(path, "tokenize", raw)
    truncation = raw.get("truncation", "head")
    if truncation not in TRUNCATIONS:
        why = f"truncation {shown(truncation)} is not one of {', '.join(TRUNCATIONS)}"
        raise damaged(path, "tokenize", why)
    return Task(names, columns, truncation)
