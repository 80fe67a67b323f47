from pathlib import Path

import pytest

from lora_core import splits
from lora_core.config import DataConfig
from lora_core.data import DataError, Examples, RawTable
from lora_core.splits import assign, check_stratifiable, resolve_split, split_random, split_sentence
from lora_core.tables import Table
from tests.tiny import tiny_sentences

SENTENCES = [
    ("a gorgeous , witty film", 1),
    ("gorgeous", 1),
    ("witty film", 1),
    ("a dull , tired mess", 0),
    ("tired mess", 0),
    ("dull", 0),
    ("the plot is fun", 1),
    ("fun", 1),
    ("the story is flat", 0),
    ("flat", 0),
    ("film", 1),
]
PHRASES = Examples([s for s, _ in SENTENCES], [y for _, y in SENTENCES])


def tiny(n: int, seed: int = 0, pairs: bool = False) -> Examples:
    rows = tiny_sentences(n, seed=seed)
    texts = [s for s, _ in rows]
    return Examples(texts, [y for _, y in rows], texts[::-1] if pairs else None)


def test_random_split_is_stratified_seeded_and_capped():
    examples = tiny(100)
    train, val, dropped = split_random(examples, 0.1, 3, "t")
    assert (len(train), len(val), dropped) == (90, 10, 0)
    assert sum(val.labels) == 5  # stratified: half positive, like the whole
    assert sorted(train.texts + val.texts) == sorted(examples.texts)
    assert split_random(examples, 0.1, 3, "t")[0] == train
    assert split_random(examples, 0.1, 3, "t", cap=7)[0].texts == train.texts[:7]


def test_sentence_split_keeps_every_phrase_with_its_sentence():
    train, val, dropped = split_sentence(PHRASES, 0.5, 0, "t")
    # sentences: the four phrases inside no other phrase; half of them (stratified) are val
    assert val.texts == ["the plot is fun", "a dull , tired mess"]
    assert val.labels == [1, 0]
    # "fun", "tired mess" and "dull" sit inside a val sentence: dropped from train
    assert dropped == 3
    assert sorted(train.texts) == sorted(
        ["the story is flat", "witty film", "film", "flat", "a gorgeous , witty film", "gorgeous"]
    )
    assert len(train) + len(val) + dropped == len(PHRASES)


def test_sentence_split_is_seeded_and_capped():
    first = split_sentence(PHRASES, 0.5, 3, "t")
    assert split_sentence(PHRASES, 0.5, 3, "t") == first
    assert split_sentence(PHRASES, 0.5, 3, "t", cap=2)[0].texts == first[0].texts[:2]


def test_auto_is_sentence_for_phrase_data_and_random_otherwise(monkeypatch):
    assert resolve_split("auto", PHRASES, "t") == "sentence"  # 7 of 11 texts are inner
    assert resolve_split("auto", tiny(50), "t") == "random"
    assert resolve_split("auto", tiny(50, pairs=True), "t") == "random"
    assert resolve_split("sentence", tiny(50), "t") == "sentence"  # asked for: allowed
    monkeypatch.setattr(splits, "MAX_SPANS", 10)
    assert resolve_split("auto", PHRASES, "t") == "random"  # too long to compare: not SST-2


def test_sentence_split_refuses_pairs_and_long_texts_in_one_line(monkeypatch):
    with pytest.raises(DataError) as pairs:
        resolve_split("sentence", tiny(10, pairs=True), "train.csv")
    assert str(pairs.value) == (
        "data.split = 'sentence' is not allowed with two text columns: use random or auto"
    )
    monkeypatch.setattr(splits, "MAX_SPANS", 10)
    with pytest.raises(DataError) as long:
        resolve_split("sentence", PHRASES, "train.csv")
    assert str(long.value) == (
        "data.split = 'sentence' is not allowed for train.csv: the runs of words it would compare "
        "hold 123 words (at most 10); it is for SST-2's short phrases: use random or auto"
    )


def test_a_long_text_is_refused_fast():
    review = Examples([" ".join(f"w{i}" for i in range(1500)), "short text"], [0, 1])
    cost = 1500 * 1501 * 1502 // 6 + 4  # n(n+1)(n+2)/6 words in the runs of each text
    assert splits.span_count(review.texts) == cost > splits.MAX_SPANS
    with pytest.raises(DataError, match=f"compare hold {cost:,} words"):
        resolve_split("sentence", review, "r.csv")  # refused before comparing any run
    assert resolve_split("auto", review, "r.csv") == "random"


def test_the_span_count_of_a_text_of_millions_of_words_does_not_wrap():
    n = 2_100_000  # n(n+1)(n+2) is past int64's 9.2e18: in int64 the count wrapped negative
    text = Examples(["w " * n, "short text"], [0, 1])
    assert n * (n + 1) * (n + 2) > 2**63
    assert splits.span_count(text.texts) == n * (n + 1) * (n + 2) // 6 + 4
    with pytest.raises(DataError, match=f"compare hold {n * (n + 1) * (n + 2) // 6 + 4:,} words"):
        resolve_split("sentence", text, "r.csv")
    assert resolve_split("auto", text, "r.csv") == "random"


NAMES = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"}


def cfg(**kw):
    return DataConfig(**{"split": "random", **kw})


@pytest.mark.parametrize(
    ("roles", "rows", "sources"),
    [
        (
            ("train", "validation", "test"),
            {"train": 100, "val": 20, "test": 30},
            {"train": "train.csv", "val": "validation.csv", "test": "test.csv"},
        ),
        (
            ("train", "validation"),  # SST-2: the validation file is the test set
            {"train": 90, "val": 10, "test": 20},
            {
                "train": "train.csv",
                "val": "0.1 of train.csv (random split)",
                "test": "validation.csv",
            },
        ),
        (
            ("train", "test"),
            {"train": 90, "val": 10, "test": 30},
            {"train": "train.csv", "val": "0.1 of train.csv (random split)", "test": "test.csv"},
        ),
        (
            ("train",),
            {"train": 81, "val": 9, "test": 10},  # val: 0.1 of the 90 left after test
            {
                "train": "train.csv",
                "val": "0.1 of train.csv after test (random split)",
                "test": "0.1 of train.csv (random split)",
            },
        ),
    ],
)
def test_which_file_is_what_one_rule(roles, rows, sources):
    sizes = {"train": 100, "validation": 20, "test": 30}
    files = {r: tiny(sizes[r], seed=i) for i, r in enumerate(roles)}
    got, got_sources, kind, dropped = assign(files, NAMES, cfg())
    assert {k: len(v) for k, v in got.items()} == rows
    assert got_sources == sources
    assert kind == ("none" if len(roles) == 3 else "random")
    assert dropped == 0
    if roles == ("train",):  # every row once
        texts = [t for split in got.values() for t in split.texts]
        assert sorted(texts) == sorted(files["train"].texts)


def test_cap_samples_train_whatever_the_rule():
    files = {r: tiny(100, seed=i) for i, r in enumerate(("train", "validation", "test"))}
    got = assign(files, NAMES, cfg(max_train_examples=7))[0]
    assert len(got["train"]) == 7 and set(got["train"].texts) <= set(files["train"].texts)
    assert assign(files, NAMES, cfg(max_train_examples=7))[0] == got


def test_a_class_with_one_row_names_the_row():
    t = RawTable(Table(Path("train.csv"), [["a", "b", "c"], ["p", "q", "p"]]), [], ["p", "q", "p"])
    examples = Examples(["a", "b", "c"], [0, 1, 0])
    with pytest.raises(DataError) as info:
        check_stratifiable(t, examples)
    assert str(info.value) == (
        "train.csv row 3: label 'q' has 1 row: carving a stratified val share "
        "needs 2 or more per class (add rows, or give validation and test files)"
    )
    two = RawTable(t.file, [], ["p", "q", "p", "q"])  # train alone: test and val carved
    with pytest.raises(DataError) as info:
        check_stratifiable(two, Examples(list("abcd"), [0, 1, 0, 1]), carves=2)
    assert str(info.value).startswith(
        "train.csv row 5: label 'q' has 2 rows: carving stratified test and val shares needs 3"
    )


def test_in_train_counts_val_and_test_texts_and_pairs_also_in_train_after_trimming():
    train = Examples(["a b", " c ", "d"], [0, 1, 0])
    val = Examples(["a b ", "x", "c"], [0, 1, 1])
    test = Examples(["d", "d", "a  b", "y"], [0, 0, 0, 1])
    assert splits.in_train({"train": train, "val": val, "test": test}) == {
        "val": [0, 2],
        "test": [0, 1],  # inner whitespace counts: "a  b" is not "a b"
    }
    pairs = lambda texts, seconds: Examples(texts, [0] * len(texts), seconds)  # noqa: E731
    found = splits.in_train(
        {
            "train": pairs(["a", "b"], ["p", "q"]),
            "val": pairs(["a", "a "], ["q", " p"]),  # the pair, not either text, must repeat
            "test": pairs(["b"], ["q"]),
        }
    )
    assert found == {"val": [1], "test": [0]}


def test_pair_text_in_train_counts_pairs_holding_any_train_text_in_either_column():
    pairs = lambda texts, seconds: Examples(texts, [0] * len(texts), seconds)  # noqa: E731
    parts = {
        "train": pairs(["a", "b"], ["p", "q"]),
        # " q " holds train's second text in its first column, "b" train's first in its
        # second; "x"/"y" holds neither; "a  " trimmed is "a"
        "val": pairs([" q ", "x", "a  ", "z"], ["z", "y", "w", "b"]),
        "test": pairs(["x", "p"], ["y", "a"]),
    }
    assert splits.pair_text_in_train(parts) == {"val": 3, "test": 1}


def test_leak_lines_notes_pairs_sharing_texts_past_one_percent_and_nothing_for_singles():
    summary = {
        "also_in_train": {"val": 0, "test": 0},
        "splits": {"val": {"rows": 200}, "test": {"rows": 300}},
        "sources": {"train": "train.tsv", "val": "0.1 of train.tsv (random split)",
                    "test": "test.tsv"},
        "pair_text_in_train": {"val": 118, "test": 3},
    }  # fmt: skip
    assert splits.leak_lines(summary, dropped=False) == [
        "note: 118 of 200 val (0.1 of train.tsv (random split)) pairs (59.0%) hold a text "
        "that train's pairs hold too: a model that memorises texts scores well there, so "
        "choosing by them favours it (give a validation file whose texts train lacks)"
    ]  # test's 3 of 300 is the 1% allowed
    summary["pair_text_in_train"]["test"] = 4
    assert splits.leak_lines(summary, dropped=True)[1] == (
        "note: 4 of 300 test (test.tsv) pairs (1.3%) hold a text that train's pairs hold too: "
        "a model that memorises texts scores well there, so they overstate new data (give a "
        "test file whose texts train lacks)"
    )
    del summary["pair_text_in_train"]
    assert splits.leak_lines(summary, dropped=False) == []


def test_dedupe_drops_exactly_those_rows_and_refuses_to_empty_a_split():
    parts = {
        "train": Examples(["a", "b"], [0, 1]),
        "val": Examples(["a", "v"], [0, 1]),
        "test": Examples(["t", "b", "u", "a"], [1, 1, 0, 0]),
    }
    sources = {"train": "train.csv", "val": "validation.csv", "test": "test.csv"}
    out = splits.dedupe(parts, splits.in_train(parts), sources)
    assert out["val"] == Examples(["v"], [1]) and out["test"] == Examples(["t", "u"], [1, 0])
    assert out["train"] is parts["train"]
    parts["val"] = Examples(["b", "a"], [1, 0])
    with pytest.raises(DataError) as err:
        splits.dedupe(parts, splits.in_train(parts), sources)
    assert str(err.value) == (
        "data.dedupe = true drops every val row (validation.csv): each is also in train "
        "(train.csv); use other files or data.dedupe: false"
    )
