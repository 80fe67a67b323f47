"""`lora-sst2 predict`: texts (or sentence pairs) in, label and its probability out, scored as
evaluate scores."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lora_core.errors import LoraSst2Error
from lora_core.readers import decode_utf8
from lora_core.tables import FORMATS, read_columns

STDIN = "-"  # as a --file, or as the only sentence: read standard input
KINDS = ", ".join(FORMATS[:-1]) + " or " + FORMATS[-1]  # read by column; others: a text a line


def read_table(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    """Each of ``columns`` of a table file, by name (other columns are ignored)."""
    if path.is_dir():
        raise LoraSst2Error(f"--file {path} is a directory, expected a text file")
    table = read_columns(path, list(columns), f"; this adapter reads {', '.join(columns)}")
    return [table.texts(k, name) for k, name in enumerate(columns)]


def json_line(row: dict) -> str:
    """A prediction as one JSON line, probabilities rounded to 6 digits."""
    rounded = {label: round(p, 6) for label, p in row["probabilities"].items()}
    return json.dumps({**row, "score": round(row["score"], 6), "probabilities": rounded})


def plain_line(row: dict) -> str:
    """label, score and text, tab-separated; a pair's second text is a fourth field. A tab or
    line break inside a text shows as ``\\t``, ``\\n``: one prediction a line."""
    texts = [row["text"], row["text_pair"]] if "text_pair" in row else [row["text"]]
    return "\t".join([row["label"], f"{row['score']:.4f}", *map(_one_line, texts)])


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def input_source(texts: list[str], file: str | None) -> tuple[list[str], str | None]:
    """The arguments' texts, or the file to read ('-': stdin): checked before the model loads."""
    if file is not None and texts:
        raise LoraSst2Error("give sentences as arguments or with --file, not both")
    if STDIN in texts:
        if len(texts) > 1:
            raise LoraSst2Error(
                "'-' reads the sentences from standard input: give it alone, not among sentences"
            )
        return [], STDIN
    if file is None and not texts:
        raise LoraSst2Error("no input: give sentences as arguments or with --file PATH")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise LoraSst2Error(f"input {number} is empty: every input needs some text")
    return texts, file


def read_inputs(
    texts: list[str], file: str | None, columns: tuple[str, ...] = ("sentence",)
) -> tuple[list[str], list[str] | None]:
    """The texts to score, and their second texts when ``columns`` (the adapter's text
    columns) are a pair. A .csv, .tsv, .jsonl or .parquet --file is read by column name; any other
    file, and stdin, is one text a line, for a one-text adapter only."""
    texts, file = input_source(texts, file)
    if file not in (None, STDIN) and Path(file).suffix.lower() in FORMATS:
        values = read_table(Path(file), columns)
        return values[0], values[1] if len(columns) == 2 else None
    if len(columns) == 2:
        a, b = (repr(c) for c in columns)
        plain = {None: "sentence arguments are single texts", STDIN: "standard input is"}
        where = plain.get(file, f"--file {file} is not {KINDS}, so it is")
        if file is not None:
            where += " read as one text a line"
        raise LoraSst2Error(
            f"{where}, and this adapter scores sentence pairs: give them with --file, a "
            f"{KINDS} file with columns {a} and {b}"
        )
    return (texts if file is None else _read_file(file)), None


def _read_file(file: str) -> list[str]:
    """The file's sentences: some text, and no blank line but at the end."""
    lines = decode_utf8(_read_bytes(file), f"--file {file}").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
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


def _read_bytes(file: str) -> bytes:
    """The file's bytes ('-': stdin's): a folder, an unreadable file or a NUL byte refused."""
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
    return data


def params_file(args: argparse.Namespace) -> str | None:
    """The --params the user gave (it must exist), else the project's params.yaml if any."""
    defaulted = "params" in getattr(args, "defaulted", ())
    return None if defaulted and not Path(args.params).exists() else args.params


def run_predict(args: argparse.Namespace) -> int:
    texts, file = input_source(args.texts, args.file)  # before the model loads, which is slow
    from lora_core.predictor import Predictor  # torch: not for `lora-sst2 --help`

    predictor = Predictor(args.adapter, params_file(args), args.base_dir)
    rows, truncated = predictor.predictions(*read_inputs(texts, file, predictor.text_columns))
    if truncated:
        print(
            f"note: {truncated} input(s) truncated to {predictor.max_length} tokens",
            file=sys.stderr,
        )
    for row in rows:
        print(json_line(row) if args.json else plain_line(row))
    return 0


def register(subparsers) -> None:
    """Add `predict` to the CLI."""
    p = subparsers.add_parser("predict", help="score texts with the trained adapter")
    p.add_argument(
        "texts", nargs="*", help="texts to score (not sentence pairs); a lone '-' reads stdin"
    )
    p.add_argument(
        "--file",
        help="a .csv, .tsv, .jsonl or .parquet file with the adapter's text columns by name "
        "(pairs too), else one text a line; '-' reads stdin",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="JSON lines: text (and text_pair), label, score (its probability), probabilities",
    )
    p.add_argument(
        "--adapter", help="folder with adapter.* or PEFT's files (default: the project's models/)"
    )
    p.add_argument(
        "--params", help="device and evaluate settings (default: the project's params.yaml)"
    )
    p.set_defaults(run=run_predict, project_defaults={"adapter": "models", "params": "params.yaml"})
