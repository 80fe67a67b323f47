"""examples/own_data.py's sentence pairs with a validation file whose sentences train lacks:
the pairs folder's random val holds train's sentences in most of its rows (prepare notes
it), so a tune study there chooses by memorisation. This folder holds out a tenth of the
train sentences of each class for validation.tsv; test.tsv is the pairs folder's own.

    python examples/own_data.py && python bench/pairs_heldout.py   # data/raw/pairs-heldout/
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import own_data  # noqa: E402

HEADER = ["premise", "hypothesis", "label"]


def main() -> int:
    rng = random.Random(0)
    kept, held = {}, {}
    for label, texts in own_data.sentences("train").items():
        texts = sorted(set(texts))
        rng.shuffle(texts)
        cut = len(texts) // 10
        held[label], kept[label] = texts[:cut], texts[cut:]
    out = own_data.RAW / "pairs-heldout"
    own_data.write(out / "train.tsv", HEADER, own_data.pairs(kept, 13500, rng), "\t")
    own_data.write(out / "validation.tsv", HEADER, own_data.pairs(held, 1500, rng), "\t")
    shutil.copy(own_data.RAW / "pairs/test.tsv", out / "test.tsv")
    print(f"wrote {out}/{{train,validation,test}}.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
