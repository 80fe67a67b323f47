"""Which rows train, validate and test: the files as given, or shares carved from train
(stratified and seeded; for SST-2, whole sentences kept apart from their phrases)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lora_core.data import DataError, Examples, RawTable

# data.split=sentence compares every contiguous run of words of every train text: a text of
# n words has n(n+1)/2 runs holding n(n+1)(n+2)/6 words. Past this many words in runs
# (SST-2: 44 million, a few seconds) the data is not SST-2's short phrases.
MAX_SPANS = 200_000_000
USE = "use random or auto"
PHRASE_SHARE = 0.5  # auto picks sentence when at least this share of texts are inner phrases
LEAK_SHARE = 0.01  # prepare notes val or test rows that are also in train past this share
EVAL = ("val", "test")


def check_stratifiable(table: RawTable, examples: Examples, carves: int = 1) -> None:
    """Each stratified carve takes a row of every class and leaves one: a class with fewer
    than ``carves + 1`` rows cannot be split so. Name its last row."""
    counts = np.bincount(np.asarray(examples.labels))
    for i in range(len(examples) - 1, -1, -1):
        n = counts[examples.labels[i]]
        if n <= carves:
            shares = "a stratified val share" if carves == 1 else "stratified test and val shares"
            raise DataError(
                f"{table.where(i)}: label {table.labels[i]!r} has {n} row{'s' if n > 1 else ''}: "
                f"carving {shares} needs {carves + 1} or more per class (add rows, "
                "or give validation and test files)"
            )


def _stratified(indices: np.ndarray, labels: list[int], fraction: float, seed: int, where: str):
    from sklearn.model_selection import train_test_split

    part = [labels[i] for i in indices]
    try:
        return train_test_split(indices, test_size=fraction, random_state=seed, stratify=part)
    except ValueError as err:
        raise DataError(
            f"{where}: cannot carve {fraction:g} of {len(indices)} rows: {err}"
        ) from None


def split_random(
    examples: Examples, fraction: float, seed: int, where: str, cap: int | None = None
) -> tuple[Examples, Examples, int]:
    """Seeded, stratified: (rest, the carved share, 0); ``cap`` keeps the rest's first n."""
    rest, carved = _stratified(np.arange(len(examples)), examples.labels, fraction, seed, where)
    return examples.subset(rest[:cap].tolist()), examples.subset(carved.tolist()), 0


def _spans(tokens: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every contiguous run of ``tokens``, itself included."""
    return (tokens[i:j] for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1))


def span_count(texts: list[str]) -> int:
    """How many words the runs the sentence split compares hold: its cost in time. Python
    ints: in int64 a text of about 2.1 million words wraps negative and passes MAX_SPANS."""
    lengths = (len(text.split()) for text in set(texts))
    return sum(n * (n + 1) * (n + 2) // 6 for n in lengths)


def inner_phrases(tokens: list[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The texts that are a run of words inside another text."""
    phrases = set(tokens)
    return {span for t in phrases for span in _spans(t) if span != t and span in phrases}


def split_sentence(
    examples: Examples, fraction: float, seed: int, where: str, cap: int | None = None
) -> tuple[Examples, Examples, int]:
    """The carved share = whole sentences only; the rest = every phrase in none of them.

    GLUE's SST-2 train holds phrases cut from the parse trees of its sentences. A sentence
    is a phrase contained in no other phrase (as a run of words). ``fraction`` of the
    sentences (seeded, stratified) are carved out; a phrase inside any of them leaves the
    rest, so no carved text is seen in training. Returns (rest, carved, phrases dropped);
    ``cap`` keeps a seeded sample of the rest.
    """
    tokens = [tuple(s.split()) for s in examples.texts]  # (n,) word tuples
    inner = inner_phrases(tokens)
    sentences = np.array([i for i, t in enumerate(tokens) if t not in inner])
    _, carved = _stratified(sentences, examples.labels, fraction, seed, where)
    phrases = set(tokens)  # only runs that are texts themselves are kept: memory stays small
    seen = {span for i in carved for span in _spans(tokens[i]) if span in phrases}
    kept = [i for i, t in enumerate(tokens) if t not in seen]
    dropped = len(tokens) - len(carved) - len(kept)
    kept = np.random.default_rng(seed).permutation(kept)[:cap]  # a cap takes a sample
    return examples.subset(kept.tolist()), examples.subset(carved.tolist()), dropped


def resolve_split(kind: str, train: Examples, where: str) -> str:
    """data.split's value for this data: ``auto`` is ``sentence`` for SST-2-style phrase
    data (half the texts or more inside other texts), else ``random``."""
    if kind == "random" or (kind == "auto" and train.pairs is not None):
        return "random"
    spans = span_count(train.texts)
    if kind == "sentence":
        if train.pairs is not None:
            raise DataError(f"data.split = 'sentence' is not allowed with two text columns: {USE}")
        if spans > MAX_SPANS:
            raise DataError(
                f"data.split = 'sentence' is not allowed for {where}: the runs of words it would "
                f"compare hold {spans:,} words (at most {MAX_SPANS:,}); it is for SST-2's short "
                f"phrases: {USE}"
            )
        return "sentence"
    if spans > MAX_SPANS:
        return "random"
    tokens = [tuple(s.split()) for s in train.texts]
    inner = inner_phrases(tokens)
    share = sum(t in inner for t in tokens) / len(tokens)
    return "sentence" if share >= PHRASE_SHARE else "random"


SPLITTERS = {"random": split_random, "sentence": split_sentence}


def assign(files: dict[str, Examples], names: dict[str, str], cfg) -> tuple[dict, dict, str, int]:
    """(train/val/test examples, where each came from, the split kind used, phrases dropped).

    test = the test file, else the validation file (SST-2: GLUE dev is the test set); val =
    the validation file when it is not the test set, else carved from train; a train file
    alone gives test too (``test_fraction`` of it, then ``val_fraction`` of the rest).
    ``names`` are the files' names; ``cfg`` is the data section of params.
    """
    train, where, cap = files["train"], names["train"], cfg.max_train_examples
    if "test" in files and "validation" in files:
        sample = np.random.default_rng(cfg.seed).permutation(len(train))[:cap]  # all, shuffled
        splits = {"train": train.subset(sample.tolist()), "val": files["validation"]}
        sources = {"train": where, "val": names["validation"], "test": names["test"]}
        return {**splits, "test": files["test"]}, sources, "none", 0
    kind = resolve_split(cfg.split, train, where)
    carve, dropped = SPLITTERS[kind], 0
    role = "test" if "test" in files else "validation" if "validation" in files else None
    if role is None:
        train, test, dropped = carve(train, cfg.test_fraction, cfg.seed, where)
        test_source = f"{cfg.test_fraction:g} of {where} ({kind} split)"
    else:
        test, test_source = files[role], names[role]
    train, val, more = carve(train, cfg.val_fraction, cfg.seed, where, cap)
    rest = "" if role else " after test"
    sources = {"train": where, "val": f"{cfg.val_fraction:g} of {where}{rest} ({kind} split)"}
    sources["test"] = test_source
    return {"train": train, "val": val, "test": test}, sources, kind, dropped + more


def in_train(splits: dict[str, Examples]) -> dict[str, list[int]]:
    """The rows of val and test whose text (or text pair), whitespace trimmed, is also in
    train: public files often repeat rows across their own splits."""
    seen = set(_keys(splits["train"]))
    return {name: [i for i, k in enumerate(_keys(splits[name])) if k in seen] for name in EVAL}


def pair_text_in_train(splits: dict[str, Examples]) -> dict[str, int]:
    """Sentence pairs: how many val and test rows hold a text, whitespace trimmed, that is
    one of train's texts (in either column). Files that build pairs from a pool of texts
    (NLI's premises, pairs of sentences) reuse them across rows, and a random val split then
    rewards a model that memorises them: no pair repeats, and val still says little."""
    train = splits["train"]
    seen = {text.strip() for text in (*train.texts, *train.pairs)}
    return {
        name: sum(
            a.strip() in seen or b.strip() in seen
            for a, b in zip(splits[name].texts, splits[name].pairs)
        )
        for name in EVAL
    }


def _keys(examples: Examples) -> Iterator:
    if examples.pairs is None:
        return (text.strip() for text in examples.texts)
    return ((text.strip(), pair.strip()) for text, pair in zip(examples.texts, examples.pairs))


def dedupe(splits: dict[str, Examples], rows: dict[str, list[int]], sources: dict) -> dict:
    """``splits`` with ``rows`` dropped from val and test (data.dedupe); a split left empty
    is an error naming where it came from."""
    out = dict(splits)
    for name, drop in rows.items():
        if drop and len(drop) == len(splits[name]):
            raise DataError(
                f"data.dedupe = true drops every {name} row ({sources[name]}): each is also "
                f"in train ({sources['train']}); use other files or data.dedupe: false"
            )
        skip = set(drop)
        out[name] = splits[name].subset([i for i in range(len(splits[name])) if i not in skip])
    return out


def leak_lines(summary: dict, dropped: bool) -> list[str]:
    """What prepare says of val and test rows also in train: past LEAK_SHARE, a note (kept),
    or how many data.dedupe dropped."""
    lines = []
    for name, n in summary["also_in_train"].items():
        kept = summary["splits"][name]["rows"]
        where = f"{name} ({summary['sources'][name]})"
        if dropped and n:
            lines.append(f"data.dedupe: dropped {n} {where} rows that are also in train")
        elif not dropped and n > LEAK_SHARE * kept:
            lines.append(
                f"note: {n} of {kept} {where} rows ({100 * n / kept:.1f}%) are also in train "
                f"({summary['sources']['train']}): their scores say little about new data "
                "(data.dedupe: true drops them)"
            )
    for name, n in summary.get("pair_text_in_train", {}).items():
        kept = summary["splits"][name]["rows"]
        if n > LEAK_SHARE * kept:
            so = "choosing by them favours it" if name == "val" else "they overstate new data"
            role = "validation" if name == "val" else "test"
            lines.append(
                f"note: {n} of {kept} {name} ({summary['sources'][name]}) pairs "
                f"({100 * n / kept:.1f}%) hold a text that train's pairs hold too: a model "
                f"that memorises texts scores well there, so {so} (give a {role} file whose "
                "texts train lacks)"
            )
    return lines
