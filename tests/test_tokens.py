"""Tokenized splits: unpadded ids on disk, pairs with segment ids, the task beside them."""

import numpy as np
import pytest

from lora_core.batches import collate
from lora_core.data import DataError
from lora_core.pretrained import load_tokenizer
from lora_core.tokens import (
    TASK,
    chunks,
    head_tail,
    length_summary,
    load_tokenized,
    read_task,
    save_tokenized,
    split_file,
    tokenize,
)
from tests.tiny import write_tiny_model


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    write_tiny_model(base / "tiny")
    return load_tokenizer("tiny", base_dir=base)


def test_tokenize_is_unpadded_and_round_trips_byte_identically(tokenizer, tmp_path):
    split, full = tokenize(tokenizer, ["good film", "a very dull plot"], [1, 0], max_length=4)
    assert split.lengths.tolist() == [4, 4]  # [CLS] good film [SEP]; truncated to 4
    assert full.tolist() == [4, 6]  # [CLS] a very dull plot [SEP] before the cut
    assert split.type_ids is None and "token_type_ids" not in collate(split, np.arange(2))
    assert split.ids[:4].tolist() == tokenizer("good film")["input_ids"]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        save_tokenized(tmp_path / folder, "test", split, {"model": "tiny"})
    a, b = split_file(tmp_path / "a", "test"), split_file(tmp_path / "b", "test")
    assert a == tmp_path / "a/test.safetensors"
    assert a.read_bytes() == b.read_bytes()
    loaded = load_tokenized(tmp_path / "a", "test")
    assert np.array_equal(loaded.ids, split.ids) and loaded.pad_id == tokenizer.pad_token_id


def test_pairs_are_the_tokenizers_pair_cut_longest_first_with_segment_ids(tokenizer, tmp_path):
    texts, pairs = ["good film", "a very dull plot and a boring story"], ["the plot", "fun"]
    split, full = tokenize(tokenizer, texts, [1, 0], max_length=7, pairs=pairs)
    expected = tokenizer(texts, pairs, truncation="longest_first", max_length=7)
    for i in range(2):
        a, b = split.offsets[i], split.offsets[i + 1]
        assert split.ids[a:b].tolist() == expected["input_ids"][i]
        assert split.type_ids[a:b].tolist() == expected["token_type_ids"][i]
    # [CLS] good film [SEP] the plot [SEP]; the second row lost its longer first text's tail
    assert split.ids[:7].tolist() == tokenizer("good film", "the plot")["input_ids"]
    assert full.tolist() == [7, 12]
    batch = collate(split, np.array([1, 0]))
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 1]]
    save_tokenized(tmp_path, "train", split, {"model": "tiny"})
    loaded = load_tokenized(tmp_path, "train")
    assert np.array_equal(loaded.type_ids, split.type_ids) and loaded.type_ids.dtype == np.int8


def test_length_summary_counts_cut_texts_and_percentiles(tokenizer):
    texts = ["good"] * 7 + ["a very dull plot and a boring story"] * 3
    split, full = tokenize(tokenizer, texts, [1] * 10, max_length=5)
    assert length_summary(split, full, 5) == {
        "rows": 10,
        "tokens": 7 * 3 + 3 * 5,
        "truncated": 3,
        "truncated_percent": 30.0,
        "length_p50": 3,
        "length_p90": 10,
        "length_p99": 10,
        "length_max": 10,
    }


def test_read_task_names_the_damage(tmp_path):
    with pytest.raises(DataError, match=r"task.json not found: run `dvc repro tokenize` first"):
        read_task(tmp_path)
    (tmp_path / TASK).write_text('{"labels": ["only"], "text_columns": ["sentence"]}')
    with pytest.raises(DataError, match=r"task.json is damaged: run `dvc repro --force tokenize`"):
        read_task(tmp_path)
    (tmp_path / TASK).write_text('{"labels": ["a", "b", "c"], "text_columns": ["x", "y"]}')
    assert read_task(tmp_path) == read_task(tmp_path).__class__(("a", "b", "c"), ("x", "y"))


def test_pairs_without_segment_ids_when_the_tokenizer_has_none(tokenizer):
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.model_input_names = ["input_ids", "attention_mask"]  # RoBERTa's family
    split, _ = tokenize(plain, ["good film"], [1], max_length=16, pairs=["the plot"])
    assert split.type_ids is None
    assert split.ids.tolist() == tokenizer("good film", "the plot")["input_ids"]
    assert "token_type_ids" not in collate(split, np.array([0]))


def test_first_keeps_the_first_rows_with_their_segment_ids(tokenizer):
    texts, pairs = ["good film", "a very dull plot", "fun"], ["the plot", "fun", "good"]
    split, _ = tokenize(tokenizer, texts, [1, 0, 1], max_length=8, pairs=pairs)
    two = split.first(2)
    end = int(split.offsets[2])
    assert two.offsets.tolist() == split.offsets[:3].tolist() and two.labels.tolist() == [1, 0]
    assert two.ids.tolist() == split.ids[:end].tolist()
    assert two.type_ids.tolist() == split.type_ids[:end].tolist()
    assert split.first(10).ids.tolist() == split.ids.tolist() and len(split.first(10)) == 3
    single, _ = tokenize(tokenizer, texts, [1, 0, 1], max_length=8)
    assert single.first(1).type_ids is None and len(single.first(1)) == 1


# POSITIVE + NEGATIVE: 16 words whose ids are 5 to 20 in the tiny vocabulary ([CLS] 2, [SEP] 3)
WORDS = [*range(5, 21)]


@pytest.mark.parametrize(
    "words, max_length, kept",
    [
        (6, 8, [5, 6, 7, 8, 9, 10]),  # fits: unchanged
        (7, 8, [5, 7, 8, 9, 10, 11]),  # one over: budget 6, head 1, tail 5
        (16, 10, [5, 6, 15, 16, 17, 18, 19, 20]),  # far over: budget 8, head 2, tail 6
        (16, 9, [5, 15, 16, 17, 18, 19, 20]),  # odd budget 7: head 1, tail 6
        (16, 3, [20]),  # budget 1: no head, the last token
    ],
)
def test_head_tail_keeps_a_quarter_head_and_the_rest_tail(tokenizer, words, max_length, kept):
    from tests.tiny import NEGATIVE, POSITIVE

    text = " ".join((POSITIVE + NEGATIVE)[:words])
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == WORDS[:words]
    split, full = tokenize(tokenizer, [text, "good"], [1, 1], max_length, truncation="head+tail")
    assert split.ids.tolist() == [2, *kept, 3, 2, 5, 3]
    assert full.tolist() == [words + 2, 3]
    head, _ = tokenize(tokenizer, [text], [1], max_length)
    assert head.ids.tolist() == [2, *WORDS[: min(words, max_length - 2)], 3]
    differs = head.ids.tolist() != split.ids[: len(head.ids)].tolist()
    assert differs == (words + 2 > max_length > 2)  # cut, with room for some text


def test_head_tail_is_the_identity_within_the_budget():
    assert head_tail([1, 2, 3], 3) == [1, 2, 3]
    assert head_tail([1, 2, 3, 4, 5], 4) == [1, 3, 4, 5]
    assert head_tail([1, 2, 3], 0) == []


def test_head_tail_refuses_pairs(tokenizer):
    with pytest.raises(DataError, match=r"^truncation head\+tail is for single texts: pairs"):
        tokenize(tokenizer, ["good"], [1], 8, pairs=["bad"], truncation="head+tail")


def test_read_task_reads_the_truncation_and_head_without_it(tmp_path):
    (tmp_path / TASK).write_text('{"labels": ["a", "b"], "text_columns": ["x"]}')
    assert read_task(tmp_path).truncation == "head"
    raw = '{"labels": ["a", "b"], "text_columns": ["x"], "truncation": "%s"}'
    (tmp_path / TASK).write_text(raw % "head+tail")
    assert read_task(tmp_path).truncation == "head+tail"
    (tmp_path / TASK).write_text(raw % "middle")
    with pytest.raises(DataError) as info:
        read_task(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / TASK} is damaged (truncation 'middle' is not one of head, head+tail): "
        "run `dvc repro --force tokenize`"
    )


def test_chunks_cut_by_rows_and_by_characters(tokenizer, monkeypatch):
    from lora_core import tokens

    monkeypatch.setattr(tokens, "CHUNK", 3)
    monkeypatch.setattr(tokens, "CHUNK_CHARS", 10)
    texts = ["ab", "cd", "ef", "gh", "x" * 12, "ij", "klmnopqr", "s"]
    assert [(c.start, c.stop) for c in chunks(texts)] == [(0, 3), (3, 5), (5, 7), (7, 8)]
    assert [(c.start, c.stop) for c in chunks(texts[:2], ["x" * 9, "y"])] == [(0, 1), (1, 2)]
    assert list(chunks([])) == []
    cut, _ = tokenize(tokenizer, ["good film"] * 4 + ["a dull plot"] * 3, [1] * 7, 8)
    monkeypatch.setattr(tokens, "CHUNK", 4096)
    whole, _ = tokenize(tokenizer, ["good film"] * 4 + ["a dull plot"] * 3, [1] * 7, 8)
    assert cut.ids.tolist() == whole.ids.tolist()
    assert cut.offsets.tolist() == whole.offsets.tolist()
