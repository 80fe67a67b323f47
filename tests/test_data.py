import pytest

from lora_core.data import DataError, Examples, read_glue_tsv, sentence_split, split_train_val
from tests.tiny import tiny_sentences, write_tsv


def test_read_glue_tsv_keeps_sentences_verbatim(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [("a gorgeous , witty film ", 1), ("a mess ", 0)])
    examples = read_glue_tsv(path)
    assert examples.sentences == ["a gorgeous , witty film ", "a mess "]
    assert examples.labels == [1, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "t.tsv is empty: expected a header 'sentence<TAB>label' and rows"),
        (b"sentence\tscore\nfine\t1\n", "t.tsv: no 'label' column in header ['sentence', 'score']"),
        (b"sentence\tlabel\nfine\t2\n", "t.tsv:2: label '2' is not allowed: use 0 or 1"),
        (b"sentence\tlabel\nfine\t1\n \t0\n", "t.tsv:3: empty sentence"),
        (
            b"sentence\tlabel\nok\t1\n\xff\xfe\t0\n",
            "t.tsv:3: bytes that are not UTF-8 (at byte 20)",
        ),
        (b"sentence\tlabel\nok\t1\textra\n", "t.tsv:2: 3 fields, the header has 2"),
        (b"sentence\tlabel\n", "t.tsv has a header but no rows"),
    ],
)
def test_read_glue_tsv_rejects_bad_files_naming_the_line(tmp_path, content, message):
    path = tmp_path / "t.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_glue_tsv(path)
    assert str(info.value) == f"{tmp_path}/{message}"


def test_split_is_stratified_seeded_and_capped():
    rows = tiny_sentences(100, seed=0)
    examples = Examples([s for s, _ in rows], [y for _, y in rows])
    train, val = split_train_val(examples, 0.1, seed=3)
    assert (len(train), len(val)) == (90, 10)
    assert sum(val.labels) == 5  # stratified: half positive, like the whole
    assert sorted(train.sentences + val.sentences) == sorted(examples.sentences)
    again, _ = split_train_val(examples, 0.1, seed=3)
    assert again == train
    capped, _ = split_train_val(examples, 0.1, seed=3, max_train=7)
    assert capped.sentences == train.sentences[:7]


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


def test_sentence_split_keeps_every_phrase_with_its_sentence():
    examples = Examples([s for s, _ in SENTENCES], [y for _, y in SENTENCES])
    train, val, dropped = sentence_split(examples, val_fraction=0.5, seed=0)
    # sentences: the four phrases inside no other phrase; half of them (stratified) are val
    assert val.sentences == ["the plot is fun", "a dull , tired mess"]
    assert val.labels == [1, 0]
    # "fun", "tired mess" and "dull" sit inside a val sentence: dropped from train
    assert dropped == 3
    assert sorted(train.sentences) == sorted(
        ["the story is flat", "witty film", "film", "flat", "a gorgeous , witty film", "gorgeous"]
    )
    for sentence in val.sentences:
        for phrase in train.sentences:
            assert f" {phrase} " not in f" {sentence} ", (phrase, sentence)
    assert len(train) + len(val) + dropped == len(examples)
    assert dropped == sum(
        any(f" {p} " in f" {v} " for v in val.sentences) for p in examples.sentences
    ) - len(val)


def test_sentence_split_is_seeded_and_capped():
    examples = Examples([s for s, _ in SENTENCES], [y for _, y in SENTENCES])
    first = sentence_split(examples, 0.5, seed=3)
    assert sentence_split(examples, 0.5, seed=3) == first
    capped, _, _ = sentence_split(examples, 0.5, seed=3, max_train=2)
    assert capped.sentences == first[0].sentences[:2]
