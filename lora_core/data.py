"""The user's labelled text: find the raw files in data.dir, read them with real parsers
(CSV quoting, JSON Lines, Parquet), name the classes, validate every row. No torch."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lora_core.errors import DataError, damaged, has_control, is_int, shown
from lora_core.readers import read_classes
from lora_core.tables import FORMATS, Table, read_columns

ROLES = {"train": ("train",), "validation": ("validation", "dev"), "test": ("test",)}
SPLITS = ("train", "val", "test")
_INTEGER = re.compile(r"-?[0-9]+")
MAX_LABEL_CHARS = 100  # a class name is shown in plots, tables and predict's output


@dataclass(frozen=True)
class Examples:
    """Texts (with their second texts, for sentence pairs) and class ids."""

    texts: list[str]
    labels: list[int]
    pairs: list[str] | None = None  # the second text column, for sentence-pair data

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Examples:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        pairs = None if self.pairs is None else pick(self.pairs)
        return Examples(pick(self.texts), pick(self.labels), pairs)


@dataclass(frozen=True)
class RawTable:
    """One raw file's texts (a list per text column) and labels as text, every row checked."""

    file: Table
    columns: list[list[str]]
    labels: list[str]

    @property
    def path(self) -> Path:
        return self.file.path

    def where(self, i: int) -> str:
        return self.file.where(i)


def raw_files(folder: str | Path) -> dict[str, Path]:
    """The folder's train file and, when present, its validation (or dev) and test files."""
    folder = Path(folder)
    found = {}
    for role, stems in ROLES.items():
        paths = [folder / f"{s}{x}" for s in stems for x in FORMATS]
        paths = [p for p in paths if p.exists() or p.is_symlink()]
        for path in paths:
            if not path.is_file():
                raise DataError(f"{path} is not a readable file (a folder, or a broken link)")
            _check_link(path, folder)
        if len(paths) > 1:
            names = " and ".join(p.name for p in paths)
            raise DataError(f"{folder}/ holds {names}: keep one {role} file")
        if paths:
            found[role] = paths[0]
    if found and "train" not in found:
        raise DataError(
            f"{folder}/ has {', '.join(p.name for p in found.values())} but no train file "
            f"(train{'|'.join(FORMATS)})"
        )
    return found


# A file in DVC's cache (files/md5/ab/cdef...): where `dvc add` links a tracked folder's
# files with cache.type symlink.
_DVC_CACHE_OBJECT = re.compile(r"[0-9a-f]{2}/[0-9a-f]{30,}")


def _check_link(path: Path, folder: Path) -> None:
    """Refuse a raw file that is a link to a file outside ``folder`` (and not in DVC's
    cache): prepare would read, and its errors quote, a file that is not the data."""
    if not path.is_symlink():
        return
    real = path.resolve()
    cached = _DVC_CACHE_OBJECT.fullmatch(f"{real.parent.name}/{real.name}") is not None
    if not cached and not real.is_relative_to(folder.resolve()):
        raise DataError(
            f"{path} is a link to {real}, outside {folder}/: copy the file into the folder"
        )


def read_table(path: Path, text_columns: tuple[str, ...], label_column: str) -> RawTable:
    """The text and label columns of one raw file, every row checked."""
    hint = "; set data.text_columns and data.label_column to its column names"
    table = read_columns(path, [*text_columns, label_column], hint)
    texts = [table.texts(k, name) for k, name in enumerate(text_columns)]
    return RawTable(table, texts, _label_texts(table, table.columns[-1], label_column))


def _label_texts(table: Table, values: list, column: str) -> list[str]:
    """Labels as text: integers (and floats that are whole, as pandas stores integers beside
    a null) as digits, strings as they are; anything else is an error naming its row."""
    out = []
    for i, value in enumerate(values):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if is_int(value):
            value = str(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            what = "missing" if value is None else shown(value)
            raise DataError(f"{table.where(i)}: {column} is {what}: every row needs a label")
        if not isinstance(value, str):
            raise DataError(
                f"{table.where(i)}: {column} is {shown(value)}: a label is an integer or a string"
            )
        if len(value) > MAX_LABEL_CHARS:  # a text column named as the label, say
            raise DataError(
                f"{table.where(i)}: {column} is {len(value):,} characters long: a label is a "
                f"class name of at most {MAX_LABEL_CHARS} (is data.label_column a text column?)"
            )
        if has_control(value):
            raise DataError(
                f"{table.where(i)}: {column} is {shown(value)}: a class name holds no control "
                "characters (tabs, newlines, terminal escapes)"
            )
        out.append(value)
    return out


def check_class_count(train: RawTable, column: str, limit: int) -> None:
    """Refuse more distinct train labels than ``limit`` (data.max_classes) before anything
    is trained: a label column that is really an id column would train a classifier of
    tens of thousands of classes, then evaluate would draw a k x k confusion matrix."""
    count = len(set(train.labels))
    if count > limit:
        raise DataError(
            f"{train.path}: {column} has {count:,} distinct labels, more than "
            f"data.max_classes = {limit:,}: is data.label_column an id column? (if these "
            "are classes, raise data.max_classes)"
        )


def class_ids(
    train: RawTable, names: tuple[str, ...] | None
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The class names in id order, and the id of each label text.

    Integer labels are class ids, which ``names`` (data.labels) names; without names they
    name themselves. String labels are names: ``names`` orders them when it names every one
    of them; names that miss one (SST-2's shipped ``[negative, positive]`` beside a folder
    labelled ``pos``/``neg``, or ``negative``/``mixed``/``positive``) are not this data's
    and leave them in sorted order.
    """
    present = set(train.labels)
    integers = all(_INTEGER.fullmatch(v) for v in present)
    if integers and names is not None:
        ids = {str(i): i for i in range(len(names))}
    elif integers:
        names = tuple(str(v) for v in sorted(int(v) for v in present))
        ids = {v: i for i, v in enumerate(names)}
    else:
        if names is None or not present <= set(names):
            names = tuple(sorted(present))
        ids = {v: i for i, v in enumerate(names)}
    if len(present) < 2:
        raise DataError(
            f"{train.path}: every row has the label {shown(next(iter(present)))}: a classifier "
            "needs at least two classes"
        )
    unused = [n for n in ids if n not in present]
    if unused:  # a class never trained: a typo in data.labels, or data for another task
        name = names[ids[unused[0]]]
        label = f"{shown(name)}" if name == unused[0] else f"{unused[0]} ({shown(name)})"
        raise DataError(f"{train.path}: no row has the label {label} that data.labels names")
    return names, ids


def to_examples(table: RawTable, ids: dict[str, int]) -> Examples:
    """The table's rows with class ids; a label that is not a class names its row."""
    labels = []
    for i, value in enumerate(table.labels):
        if value not in ids:
            allowed = ", ".join(ids) if len(ids) <= 20 else f"{len(ids)} classes"
            raise DataError(f"{table.where(i)}: label {shown(value)} is not a class ({allowed})")
        labels.append(ids[value])
    pairs = table.columns[1] if len(table.columns) > 1 else None
    return Examples(table.columns[0], labels, pairs)


def jsonl_text(rows: list[dict]) -> str:
    """One JSON object a line: any text is safe (tabs, newlines, quotes are escaped)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_examples(path: Path, examples: Examples, names: tuple[str, ...]) -> None:
    """A prepared split as JSON Lines: text (text_pair), and the label's name."""
    if examples.pairs is None:
        rows = ({"text": t, "label": names[y]} for t, y in zip(examples.texts, examples.labels))
    else:
        rows = (
            {"text": t, "text_pair": p, "label": names[y]}
            for t, p, y in zip(examples.texts, examples.pairs, examples.labels)
        )
    path.write_text(jsonl_text(rows), encoding="utf-8")


def read_examples(path: Path, names: tuple[str, ...]) -> Examples:
    """A split that ``write_examples`` wrote."""
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro prepare` first")
    ids = {n: i for i, n in enumerate(names)}
    try:
        text = path.read_text(encoding="utf-8")
        if not text.endswith("\n"):  # every row ends with one: a file cut short does not
            raise ValueError("cut short")
        rows = [json.loads(line) for line in text.split("\n")[:-1]]  # not splitlines: U+2028
        labels = [ids[r["label"]] for r in rows]
        pairs = [r["text_pair"] for r in rows] if rows and "text_pair" in rows[0] else None
        examples = Examples([r["text"] for r in rows], labels, pairs)
    except (ValueError, KeyError, TypeError):
        raise damaged(path, "prepare") from None
    if not examples.labels:
        raise damaged(path, "prepare")
    return examples


def read_summary(folder: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(class names, text columns) from the ``summary.json`` prepare wrote in ``folder``."""
    return read_classes(Path(folder) / "summary.json", "prepare")


def label_counts(examples: Examples, names: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(np.asarray(examples.labels, dtype=np.int64), minlength=len(names))
    return {name: int(n) for name, n in zip(names, counts)}
