import json

import pandas as pd
import pytest

from lora_core import tables
from lora_core.data import (
    DataError,
    Examples,
    class_ids,
    raw_files,
    read_examples,
    read_summary,
    read_table,
    to_examples,
    write_examples,
)
from lora_core.errors import LoraSst2Error
from lora_core.tables import read_columns

# A spreadsheet's export: quoted fields holding the separator, quotes, a tab and newlines,
# a BOM and CRLF line ends.
QUOTED_CSV = (
    '\ufefftext,label\r\n"Great, truly great.",positive\r\n"He said ""meh""\r\nand left",neutral'
    "\r\nplain\ttabbed,negative\r\n"
)
QUOTED_TEXTS = ["Great, truly great.", 'He said "meh"\r\nand left', "plain\ttabbed"]


def table(path, columns=("text",), label="label"):
    return read_table(path, columns, label)


def test_csv_keeps_quoted_commas_quotes_tabs_and_newlines(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(QUOTED_CSV.encode("utf-8"))
    t = table(path)
    assert t.columns == [QUOTED_TEXTS]
    assert t.labels == ["positive", "neutral", "negative"]


def test_tsv_with_quoted_tabs_and_newlines(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('text\tlabel\n"a\tb\nc"\t1\nd\t0\n', encoding="utf-8")
    assert table(path).columns == [["a\tb\nc", "d"]]


def test_glue_tsv_field_that_begins_with_a_quote_is_read_verbatim(tmp_path):
    # RTE's test.tsv, row 1083: a field opens a quote that its text never closes
    path = tmp_path / "train.tsv"
    rows = ["\"That film wasn't too successful, but then 'WarGames,' ... in 1983.", "x"]
    path.write_text(
        f'sentence1\tsentence2\tlabel\n{rows[0]}\tThe film WarGames" was shot.\t0\n'
        f'"A" and "B"\t"C"\t1\n{rows[1]}\ty\t1\n',
        encoding="utf-8",
    )
    t = table(path, ("sentence1", "sentence2"))
    assert t.columns == [
        [rows[0], '"A" and "B"', "x"],
        ['The film WarGames" was shot.', '"C"', "y"],
    ]
    assert t.labels == ["0", "1", "1"]


@pytest.mark.parametrize(
    "content",
    [
        'text\tlabel\n"He said ""hi"""\t1\nfine\t0\n',
        '"text"\t"label"\n"He said"\t"1"\n"fine"\t"0"\n',
    ],
    ids=["doubled quotes", "quoted header"],
)
def test_tsv_quoted_as_a_spreadsheet_quotes_is_read_quoted(tmp_path, content):
    # pandas and spreadsheets quote a field that holds a quote and double the quotes in it;
    # some quote every field
    path = tmp_path / "train.tsv"
    path.write_text(content, encoding="utf-8")
    t = table(path)
    assert t.columns == [['He said "hi"' if '""' in content else "He said", "fine"]]
    assert t.labels == ["1", "0"]


def test_tsv_that_fits_neither_reading_names_both(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('text\tlabel\nfine\t1\n"open\t0\nmore\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        table(path)
    assert str(err.value) == (
        f"{path} is neither a plain TSV (line 4 has 0 tabs where the header has 1) "
        "nor a quoted one (row 3: unexpected end of data (a quote opened and never closed?))"
    )


def test_glue_tsv_text_is_verbatim_trailing_space_and_all(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\na gorgeous , witty film \t1\nnull \t0\n", encoding="utf-8")
    t = table(path, ("sentence",))
    assert t.columns == [["a gorgeous , witty film ", "null "]]  # "null" is not NaN
    assert t.labels == ["1", "0"]


def test_jsonl_and_parquet_read_as_the_csv_does(tmp_path):
    rows = [{"text": s, "label": y, "id": i} for i, (s, y) in enumerate(zip(QUOTED_TEXTS, "pnm"))]
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    parquet = tmp_path / "test.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path in (jsonl, parquet):
        t = table(path)
        assert (t.columns, t.labels) == ([QUOTED_TEXTS], ["p", "n", "m"])


def test_pairs_read_both_columns_in_order(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("premise\thypothesis\tlabel\na\tb\tyes\nc\td\tno\n", encoding="utf-8")
    t = table(path, ("hypothesis", "premise"))
    assert t.columns == [["b", "d"], ["a", "c"]]
    examples = to_examples(t, class_ids(t, None)[1])
    assert examples == Examples(["b", "d"], [1, 0], ["a", "c"])


def _labels(tmp_path, values):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": "x", "label": v}) + "\n" for v in values))
    return table(path)


@pytest.mark.parametrize(
    ("values", "names", "expected_names", "expected_ids"),
    [
        (["pos", "neg", "neu", "neg"], None, ("neg", "neu", "pos"), [2, 0, 1, 0]),
        (["pos", "neg", "neu"], ("pos", "neu", "neg"), ("pos", "neu", "neg"), [0, 2, 1]),
        # names that miss a string label (params.yaml's, for SST-2) leave them sorted
        (["pos", "neg", "pos"], ("negative", "positive"), ("neg", "pos"), [1, 0, 1]),
        (
            ["mixed", "positive", "negative"],
            ("negative", "positive"),
            ("mixed", "negative", "positive"),
            [0, 2, 1],
        ),
        (["positive", "negative"], ("positive", "negative"), ("positive", "negative"), [0, 1]),
        ([1, 0, 1], ("negative", "positive"), ("negative", "positive"), [1, 0, 1]),
        ([10, 2, 9], None, ("2", "9", "10"), [2, 0, 1]),  # integers sort as numbers
        (["1", "0"], None, ("0", "1"), [1, 0]),
    ],
)
def test_classes_are_sorted_train_labels_or_data_labels(
    tmp_path, values, names, expected_names, expected_ids
):
    t = _labels(tmp_path, values)
    got_names, ids = class_ids(t, names)
    assert got_names == expected_names
    assert to_examples(t, ids).labels == expected_ids


def test_label_errors_name_the_file_row_and_value(tmp_path):
    with pytest.raises(DataError) as one:
        class_ids(_labels(tmp_path, ["a", "a"]), None)
    assert str(one.value) == (
        f"{tmp_path}/train.jsonl: every row has the label 'a': "
        "a classifier needs at least two classes"
    )
    with pytest.raises(DataError) as unused:
        class_ids(_labels(tmp_path, ["a", "b"]), ("a", "b", "c"))
    assert (
        str(unused.value)
        == f"{tmp_path}/train.jsonl: no row has the label 'c' that data.labels names"
    )
    names, ids = class_ids(_labels(tmp_path, ["a", "b"]), None)
    with pytest.raises(DataError) as outside:
        to_examples(_labels(tmp_path, ["b", "a", "c"]), ids)
    assert str(outside.value) == f"{tmp_path}/train.jsonl line 3: label 'c' is not a class (a, b)"
    with pytest.raises(DataError) as id_unused:  # integer ids: every named id needs a row
        class_ids(_labels(tmp_path, [0, 1, 0]), ("neg", "neu", "pos"))
    assert str(id_unused.value) == (
        f"{tmp_path}/train.jsonl: no row has the label 2 ('pos') that data.labels names"
    )
    _, ids = class_ids(_labels(tmp_path, [0, 1]), ("n", "p"))
    with pytest.raises(DataError) as integer:
        to_examples(_labels(tmp_path, [0, 2]), ids)
    assert str(integer.value) == f"{tmp_path}/train.jsonl line 2: label '2' is not a class (0, 1)"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.csv", b"text,score\nfine,1\n", "t.csv: no column 'label' (it has: score, text); set"),
        (
            "t.csv",
            b"text,label\nfine,1\n  ,0\n",
            "t.csv row 3: text is '  ': every row needs some text",
        ),
        ("t.csv", b"text,label\nfine,1\nok\n", "t.csv row 3: label is '': every row needs a label"),
        ("t.csv", b"text,label\n", "t.csv has a header but no rows"),
        ("t.csv", b"text,label\nok,1\n\xff\xfe,0\n", "t.csv: bytes that are not UTF-8 (at byte"),
        ("t.csv", b'text,label\nok,1\n"open,1\n', "t.csv row 3: unexpected end of data"),
        ("t.csv", b"text,label\nok,1,extra\n", "t.csv row 2: 3 fields, the header has 2"),
        ("t.jsonl", b'{"text": "a", "label": 1}\n{"text": "b"\n', "t.jsonl line 2: not JSON"),
        ("t.jsonl", b'["a", 1]\n', "t.jsonl line 1: expected a JSON object"),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1}\n{"text": "\xff", "label": 0}\n',
            "t.jsonl:2: bytes that are not UTF-8 (at byte 36)",
        ),
        ("t.jsonl", b"\n\n", "t.jsonl has no rows"),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1}\n\n{"label": 1}\n',
            "t.jsonl line 3: text is missing",
        ),
        ("t.csv", b"text,label\nfine,1\n\nok,0\n", "t.csv row 3: text is '': every row needs"),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1}\n{"text": 5, "label": 1}\n',
            "t.jsonl line 2: text is 5",
        ),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1.5}\n',
            "t.jsonl line 1: label is 1.5: a label is an",
        ),
        ("t.parquet", b"PAR1 not really", "t.parquet is not a readable Parquet file"),
    ],
)
def test_bad_files_are_one_line_naming_file_and_row(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        table(path)
    assert str(info.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(info.value)


def test_raw_files_finds_roles_and_refuses_ambiguity(tmp_path):
    assert raw_files(tmp_path / "absent") == {}
    for name in ("train.csv", "dev.tsv", "test.parquet", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert raw_files(tmp_path) == {
        "train": tmp_path / "train.csv",
        "validation": tmp_path / "dev.tsv",
        "test": tmp_path / "test.parquet",
    }
    (tmp_path / "validation.jsonl").write_text("x")
    with pytest.raises(DataError, match=r"holds validation.jsonl and dev.tsv: keep one validation"):
        raw_files(tmp_path)
    (tmp_path / "train.csv").unlink()
    (tmp_path / "validation.jsonl").unlink()
    with pytest.raises(DataError, match=r"has dev.tsv, test.parquet but no train file"):
        raw_files(tmp_path)


def test_prepared_files_hold_any_text_and_are_byte_identical(tmp_path):
    texts = ["tab\there", 'new\nline "quoted"', "ünï \u2028 \u0085 line separators"]
    examples = Examples(texts, [2, 0, 1], ["a", "b\r\n", "c"])
    names = ("x", "y", "z")
    write_examples(tmp_path / "a.jsonl", examples, names)
    write_examples(tmp_path / "b.jsonl", examples, names)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_examples(tmp_path / "a.jsonl", names) == examples
    assert (tmp_path / "a.jsonl").read_text().count("\n") == 3


def test_whole_float_labels_read_as_integers(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1.0, 0.0, None]}).to_parquet(path)
    with pytest.raises(DataError, match=r"train.parquet row 3: label is missing"):
        table(path)
    pd.DataFrame({"text": ["a", "b"], "label": [1.0, 0.0]}).to_parquet(path)
    assert table(path).labels == ["1", "0"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "not found: run `dvc repro prepare` first"),
        ('{"labels": ["only"], "text_columns": ["text"]}', "is damaged"),
        ('{"labels": ["a", "b"]}', "is damaged"),
        ('{"labels": ["a", 2], "text_columns": ["text"]}', "is damaged"),
        ("[1, 2]", "is damaged"),
        ("{", "is not valid JSON"),
    ],
)
def test_read_summary_names_the_file_and_what_to_run(tmp_path, text, problem):
    if text is not None:
        (tmp_path / "summary.json").write_text(text)
    with pytest.raises(LoraSst2Error) as err:
        read_summary(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'summary.json'} {problem}")
    if problem == "is damaged":
        assert str(err.value).endswith(": run `dvc repro --force prepare`")


def test_read_summary_reads_names_and_columns_in_order(tmp_path):
    (tmp_path / "summary.json").write_text(
        json.dumps({"labels": ["neg", "neu", "pos"], "text_columns": ["premise", "hypothesis"]})
    )
    assert read_summary(tmp_path) == (("neg", "neu", "pos"), ("premise", "hypothesis"))


def test_a_raw_file_linked_from_outside_the_folder_is_refused(tmp_path):
    folder, secret = tmp_path / "raw", tmp_path / "secret.env"
    (folder / "sub").mkdir(parents=True)
    secret.write_text("TOKEN=abc\n")
    (folder / "train.csv").symlink_to(secret)
    with pytest.raises(DataError) as err:
        raw_files(folder)
    assert str(err.value) == (
        f"{folder}/train.csv is a link to {secret}, outside {folder}/: "
        "copy the file into the folder"
    )
    (folder / "train.csv").unlink()
    (folder / "sub/real.csv").write_text("sentence,label\na,0\n")
    (folder / "train.csv").symlink_to("sub/real.csv")  # inside the folder: fine
    cache = tmp_path / "cache/files/md5/ab"
    cache.mkdir(parents=True)
    (cache / ("c" * 30)).write_text("sentence,label\nb,1\n")
    (folder / "dev.csv").symlink_to(cache / ("c" * 30))  # DVC's symlink cache: fine
    assert raw_files(folder) == {"train": folder / "train.csv", "validation": folder / "dev.csv"}


def test_a_missing_column_quotes_at_most_200_characters_of_the_header(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(",".join(f"w{i:03d}" for i in range(100)) + "\n" + ",".join("x" * 100) + "\n")
    with pytest.raises(DataError) as err:
        table(path)
    have = ", ".join(f"w{i:03d}" for i in range(100))[:200]
    assert str(err.value).startswith(f"{path}: no column 'text' (it has: {have}... (100 columns))")


def test_jsonl_keeps_only_the_named_columns_and_refuses_a_line_past_the_cap(tmp_path, monkeypatch):
    path = tmp_path / "train.jsonl"
    rows = [{"text": "a", "label": 1, "notes": "x" * 50}, {"label": 0, "text": "b\u2028c"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    t = read_columns(path, ["text", "label"])
    assert (t.columns, t.numbers) == ([["a", "b\u2028c"], [1, 0]], [1, 2])
    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 60)  # the first line is 67 bytes
    with pytest.raises(DataError) as err:
        read_columns(path, ["text", "label"])
    assert str(err.value) == f"{path} line 1 is over 60 bytes long"


def test_parquet_is_read_in_batches_and_a_text_past_the_cap_names_its_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lora_core.tables import MAX_TEXT_CHARS, PARQUET_BATCH

    texts = [f"t{i}" for i in range(PARQUET_BATCH + 10)]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": texts, "label": [i % 2 for i in range(len(texts))]}), path)
    table = read_columns(path, ["text", "label"])
    assert table.columns[0] == texts and table.columns[1][-3:] == [1, 0, 1]
    texts[PARQUET_BATCH + 4] = "x" * (MAX_TEXT_CHARS + 1)  # in the second batch
    pq.write_table(pa.table({"text": texts, "label": [0] * len(texts)}), path)
    with pytest.raises(DataError) as info:
        read_columns(path, ["text", "label"])
    assert str(info.value) == (
        f"{path} row {PARQUET_BATCH + 5}: text is 100,001 characters long: at most 100,000 "
        "(a model reads only its first model.max_length tokens)"
    )


def test_parquet_chunk_that_decompresses_past_the_cap_is_refused_before_it_is_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    texts = ["a", "x" * 2_000_000]  # 2 MB uncompressed in a file of a few KB
    pq.write_table(pa.table({"text": texts, "label": [0, 1]}), path, compression="zstd")
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError) as info:
        read_columns(path, ["text", "label"])
    assert str(info.value).startswith(f"{path}: column 'text' of row group 0 is 2,0") and str(
        info.value
    ).endswith(" bytes uncompressed for 2 rows: a text is at most 100,000 characters")
