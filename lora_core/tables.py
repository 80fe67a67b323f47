"""Files of rows, read by parsers that know their formats: CSV and TSV (quoted fields with
separators, quotes and newlines; a BOM; CRLF), JSON Lines, Parquet. Rows are numbered as
the user sees them: a CSV's header is row 1, as in a spreadsheet; a JSON Lines row is its
line. Shared by the prepare stage and `lora-sst2 predict --file`."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from lora_core.errors import DataError, shown

FORMATS = (".csv", ".tsv", ".jsonl", ".parquet")
# Longer texts are refused: any model.max_length window (8,192 tokens at most) reads far
# less, and one 1 GB "sentence" would be tokenized whole, twice.
MAX_TEXT_CHARS = 100_000
MAX_LINE_BYTES = 16 * 2**20  # a JSON Lines row: two texts at the cap, escaped, fit many times
PARQUET_BATCH = 1024  # rows decoded at once: memory holds the values kept and one batch


@dataclass(frozen=True)
class Table:
    """Some columns of one file: a list of values per column, as the file holds them."""

    path: Path
    columns: list[list]
    first_row: int = 2  # the number of the first data row
    unit: str = "row"
    numbers: list[int] | None = None  # each row's number, where rows skip some (JSON Lines)

    def where(self, i: int) -> str:
        """Where data row ``i`` (from 0) is, as the user finds it: ``train.csv row 7``."""
        number = self.numbers[i] if self.numbers is not None else i + self.first_row
        return f"{self.path} {self.unit} {number}"

    def texts(self, k: int, name: str) -> list[str]:
        """Column ``k`` (called ``name``) as texts; an empty or non-text value names its row."""
        values = self.columns[k]
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                shown = "missing" if value is None else repr(value)
                raise DataError(f"{self.where(i)}: {name} is {shown}: every row needs some text")
            if len(value) > MAX_TEXT_CHARS:
                raise DataError(
                    f"{self.where(i)}: {name} is {len(value):,} characters long: at most "
                    f"{MAX_TEXT_CHARS:,} (a model reads only its first model.max_length tokens)"
                )
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as err:  # JSON's "\ud83d": half an emoji
                    bad = f"{value[err.start]!r} at character {err.start}"
                    raise DataError(f"{self.where(i)}: {name} holds {bad}, not text") from None
        return values


def read_columns(path: Path, wanted: list[str], hint: str = "") -> Table:
    """The ``wanted`` columns of a .csv, .tsv, .jsonl or .parquet file, by name; a missing
    column is an error that names the file's columns, then ``hint``."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        numbers, columns = _read_jsonl(path, wanted, hint)
        table = Table(path, columns, 1, "line", numbers)
    elif suffix == ".parquet":
        table = Table(path, _read_parquet(path, wanted, hint), 1, "row")
    else:
        frame = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        _check_columns(path, wanted, set(frame.columns), hint)
        table = Table(path, [frame[c].tolist() for c in wanted], 2, "row")
    if not table.columns[0]:
        raise DataError(f"{path} has a header but no rows")
    return table


def _read_parquet(path: Path, wanted: list[str], hint: str) -> list[list]:
    """The ``wanted`` columns of a Parquet file, decoded a batch of rows at a time, each
    batch's texts checked against MAX_TEXT_CHARS before they become Python strings; a
    column chunk too big for its rows to be under the cap is refused before it is read."""
    import pyarrow.parquet as pq

    columns, start = [[] for _ in wanted], 0
    try:
        with pq.ParquetFile(path) as f:
            _check_columns(path, wanted, set(f.schema_arrow.names), hint)
            _check_chunk_sizes(path, f.metadata, wanted)
            for batch in f.iter_batches(batch_size=PARQUET_BATCH, columns=wanted):
                _check_text_lengths(path, batch, wanted, start)
                for values, name in zip(columns, wanted):
                    values.extend(batch.column(name).to_pylist())
                start += batch.num_rows
    except (OSError, ValueError) as err:  # pyarrow's errors derive from these
        raise DataError(f"{path} is not a readable Parquet file ({first_line(err)})") from None
    return columns


def _check_chunk_sizes(path: Path, metadata, wanted: list[str]) -> None:
    """Refuse, from the file's metadata alone, a column chunk whose uncompressed size says
    that some value in it is past MAX_TEXT_CHARS (4 bytes a character at most, plus 1 MiB
    of page headers): a few bytes of zeros can claim gigabytes once decompressed."""
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            bound = group.num_rows * (4 * MAX_TEXT_CHARS + 4) + 2**20
            if name in wanted and chunk.total_uncompressed_size > bound:
                raise DataError(
                    f"{path}: column {name!r} of row group {g} is "
                    f"{chunk.total_uncompressed_size:,} bytes uncompressed for "
                    f"{group.num_rows:,} rows: a text is at most {MAX_TEXT_CHARS:,} characters"
                )


def _check_text_lengths(path: Path, batch, wanted: list[str], start: int) -> None:
    """Refuse a text of this batch past MAX_TEXT_CHARS, naming its row (from 1), before the
    batch becomes Python strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in wanted:
        column = batch.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        lengths = pc.utf8_length(column)
        if (pc.max(lengths).as_py() or 0) > MAX_TEXT_CHARS:
            i = pc.index(pc.greater(lengths, MAX_TEXT_CHARS), True).as_py()
            raise DataError(
                f"{path} row {start + i + 1}: {name} is {lengths[i].as_py():,} characters "
                f"long: at most {MAX_TEXT_CHARS:,} (a model reads only its first "
                "model.max_length tokens)"
            )


def _read_delimited(path: Path, sep: str):
    """A CSV or TSV with a header, as strings: quoted fields may hold the separator, quotes
    and newlines; a BOM and CRLF line ends are fine; nothing is read as NaN. A plain TSV
    (``_not_plain`` finds nothing) is read as GLUE writes it: a ``"`` is just a character."""
    import warnings

    import pandas as pd

    not_plain = _not_plain(path) if sep == "\t" else None
    quoting = csv.QUOTE_NONE if sep == "\t" and not_plain is None else csv.QUOTE_MINIMAL
    try:
        with warnings.catch_warnings():  # a row with more fields than the header: an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                encoding="utf-8-sig", engine="c", index_col=False, skip_blank_lines=False,
                quoting=quoting,
            )  # fmt: skip
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: bytes that are not UTF-8 (at byte {err.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: expected a header row and rows") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as err:
        problem = _bad_row(path, sep) or first_line(err)
        if sep == "\t":  # neither reading fits: say what each one found
            problem = f"is neither a plain TSV ({not_plain}) nor a quoted one ({problem})"
        raise DataError(f"{path} {problem}") from None
    if frame.columns.duplicated().any():
        raise DataError(f"{path}: the header names a column twice ({list(frame.columns)})")
    return frame


def _not_plain(path: Path) -> str | None:
    """Why a .tsv is not plain, or None. Plain, as GLUE writes it: every line has the header's
    number of tabs, and a ``"`` is just a character (RTE's texts open quotes they never
    close). One exception: a file that Python's csv module reads strictly as quoted, with
    the header's width on every row, is a spreadsheet's even when its lines fit (a quoted
    field may hold a newline and a tab). One pass a line at a time, and one more if a field
    begins with a quote."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = f.readline().rstrip("\r\n")
        width = header.count("\t")
        quoted = header.startswith('"') or '\t"' in header
        for number, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if (tabs := line.count("\t")) != width:
                return f"line {number} has {tabs} tabs where the header has {width}"
            quoted = quoted or line.startswith('"') or '\t"' in line
    if quoted and _strictly_quoted(path, width + 1):
        return "its quoted fields are a spreadsheet's"
    return None


def _strictly_quoted(path: Path, width: int) -> bool:
    """Whether every row read as quoted CSV closes its quotes and has ``width`` fields."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        try:
            return all(len(row) == width for row in csv.reader(f, delimiter="\t", strict=True))
        except csv.Error:
            return False


def _bad_row(path: Path, sep: str) -> str | None:
    """Where a file the fast parser refused goes wrong, found by Python's csv module."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=sep, strict=True)
        width, number = len(next(reader, [])), 1
        try:
            for number, row in enumerate(reader, start=2):
                if len(row) > width:
                    return f"row {number}: {len(row)} fields, the header has {width}"
        except csv.Error as err:
            return f"row {number + 1}: {err} (a quote opened and never closed?)"
    return None


def _read_jsonl(path: Path, wanted: list[str], hint: str) -> tuple[list[int], list[list]]:
    """(line numbers, the ``wanted`` values of each object): one object a line, read a line
    at a time and only the wanted values kept, so memory holds the data, not the file;
    blank lines are skipped; a line past MAX_LINE_BYTES is refused before it is read whole."""
    try:
        with open(path, "rb") as f:
            numbers, columns = _jsonl_columns(f, path, wanted, hint)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    if not numbers:
        raise DataError(f"{path} has no rows")
    return numbers, columns


def _jsonl_columns(f, path: Path, wanted: list[str], hint: str) -> tuple[list[int], list[list]]:
    """``_read_jsonl``'s loop over the open file ``f``."""
    numbers, columns, offset = [], [[] for _ in wanted], 0
    for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(f"{path} line {number} is over {MAX_LINE_BYTES:,} bytes long")
        try:  # JSON escapes any newline, so a line is a row (U+2028 included)
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").removesuffix("\n")
        except UnicodeDecodeError as err:
            where = f"{path}:{number}: bytes that are not UTF-8 (at byte {offset + err.start})"
            raise DataError(where) from None
        offset += len(raw)
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not JSON ({err.msg})") from None
        except ValueError:  # an integer past Python's 4,300 digits, which int() refuses
            raise DataError(
                f"{path} line {number}: a number of over {sys.get_int_max_str_digits():,} "
                "digits: no label or text is one"
            ) from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {number}: expected a JSON object, got {line[:40]!r}")
        if not numbers:
            _check_columns(path, wanted, set(row), hint)
        numbers.append(number)
        for values, column in zip(columns, wanted):
            values.append(row.get(column))
    return numbers, columns


def _check_columns(path: Path, wanted: list[str], present: set[str], hint: str) -> None:
    for column in wanted:
        if column not in present:
            have = ", ".join(sorted(map(str, present))) or "none"
            if len(have) > 200:  # a header that is really a line of data: quote its start
                have = have[:200] + f"... ({len(present)} columns)"
            raise DataError(f"{path}: no column {shown(column)} (it has: {have}){hint}")


def first_line(err: Exception) -> str:
    """An exception's message, its first line only."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
