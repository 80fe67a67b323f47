"""Tiny random BERTs, vocabularies and GLUE-format TSVs for tests: no network, no weights."""

from __future__ import annotations

import random
from pathlib import Path

from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

POSITIVE = ["good", "great", "fine", "gorgeous", "witty", "moving", "fun", "smart"]
NEGATIVE = ["bad", "awful", "dull", "mess", "boring", "flat", "weak", "tired"]
FILLER = ["a", "the", "film", "movie", "is", "and", "very", "this", "plot", "story", ","]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + FILLER


def tiny_config(**overrides) -> BertConfig:
    """A two-layer BERT with hidden size 32 over the tiny vocabulary."""
    kwargs = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def tiny_classifier(seed: int = 0, **overrides) -> BertForSequenceClassification:
    """A random tiny BertForSequenceClassification in eval mode."""
    import torch

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(**overrides)).eval()


def write_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a random tiny BertModel and its tokenizer as a hub-style folder."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BertModel(tiny_config()).save_pretrained(folder)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # positional: transformers 4 calls it vocab_file, 5 calls it vocab; model_max_length as
    # the model's positions, so an over-long input warns as it would with a real tokenizer
    BertTokenizerFast(str(vocab), do_lower_case=True, model_max_length=64).save_pretrained(folder)
    return folder


def tiny_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """n labelled sentences whose sentiment word decides the label."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        words = rng.sample(FILLER, rng.randint(1, 6)) + [word]
        rng.shuffle(words)
        rows.append((" ".join(words) + " ", label))
    return rows


def write_tsv(path: Path, rows: list[tuple[str, int]]) -> Path:
    """Write rows in GLUE's SST-2 format (header, tab, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["sentence\tlabel"] + [f"{s}\t{label}" for s, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tiny_glue(folder: Path, n_train: int = 200, n_dev: int = 40) -> Path:
    """train.tsv and dev.tsv of tiny sentences in ``folder``."""
    write_tsv(folder / "train.tsv", tiny_sentences(n_train, seed=1))
    write_tsv(folder / "dev.tsv", tiny_sentences(n_dev, seed=2))
    return folder


def write_tiny_hub(folder: Path, n_train: int = 200, n_dev: int = 40) -> Path:
    """A hub-style dataset folder (config ``sst2``) with write_tiny_glue's rows, as Parquet.

    ``datasets.load_dataset(folder, "sst2")`` reads it offline as it reads nyu-mll/glue.
    """
    import pandas as pd

    for split, n, seed in (("train", n_train, 1), ("validation", n_dev, 2)):
        sentences, labels = zip(*tiny_sentences(n, seed=seed))
        frame = pd.DataFrame({"sentence": sentences, "label": labels, "idx": range(n)})
        (folder / "sst2").mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / f"sst2/{split}-00000-of-00001.parquet", index=False)
    card = ["---", "configs:", "- config_name: sst2", "  data_files:"]
    for split in ("train", "validation"):
        card += [f"  - split: {split}", f"    path: sst2/{split}-*"]
    (folder / "README.md").write_text("\n".join([*card, "---", ""]), encoding="utf-8")
    return folder


PAIR_CLASSES = ("contradiction", "entailment", "neutral")  # sorted: their ids are 0, 1, 2


def tiny_pairs(n: int, seed: int) -> list[dict]:
    """n premise/hypothesis rows in three string classes, which the hypothesis's sentiment
    word decides (none: neutral). Some texts hold commas, quotes and a newline."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = PAIR_CLASSES[i % 3]
        words = {"entailment": POSITIVE, "contradiction": NEGATIVE, "neutral": FILLER}[label]
        hypothesis = rng.sample(FILLER, rng.randint(1, 3)) + [rng.choice(words)]
        premise = " , ".join(rng.sample(FILLER, rng.randint(1, 4)))
        if i % 7 == 0:
            premise = f'"{premise}"\nthe story'
        rows.append({"sentence1": premise, "sentence2": " ".join(hypothesis), "label": label})
    return rows


def write_tiny_pairs(folder: Path, n_train: int = 240, n_val: int = 30, n_test: int = 45) -> Path:
    """A user's own folder: train.csv (quoted, multi-line), validation.tsv, test.jsonl."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(tiny_pairs(n_train, seed=1)).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(tiny_pairs(n_val, seed=2)).to_csv(folder / "validation.tsv", sep="\t", index=False)
    pd.DataFrame(tiny_pairs(n_test, seed=3)).to_json(
        folder / "test.jsonl", orient="records", lines=True
    )
    return folder
