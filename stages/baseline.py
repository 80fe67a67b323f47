"""Stage baseline: data/prepared -> metrics/baseline.json and its test predictions (TF-IDF +
logistic regression, C chosen on val), the reference `lora-sst2 compare` sets the model beside."""

from __future__ import annotations

import argparse
import sys
import time

from lora_core.baseline import run_baseline
from lora_core.config import load_params
from lora_core.errors import exit_on_user_error
from lora_core.files import staged


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--metrics", default="metrics")
    args = parser.parse_args(argv)
    resamples = load_params(args.params).evaluate.bootstrap_resamples
    start = time.perf_counter()
    with staged() as out:
        fit, scores = run_baseline(out, args.prepared, args.metrics, resamples)
    val, test = scores["val"], scores["test"]
    interval = f"[{test['accuracy_ci95_low']:.4f}, {test['accuracy_ci95_high']:.4f}]"
    print(
        f"TF-IDF + logistic regression, C = {fit.c:g} (best val of {len(fit.val_accuracy)}): "
        f"val accuracy {val['accuracy']:.4f}, test accuracy {test['accuracy']:.4f} {interval} "
        f"({fit.features} features, {time.perf_counter() - start:.1f} s)"
    )


if __name__ == "__main__":
    sys.exit(main())
