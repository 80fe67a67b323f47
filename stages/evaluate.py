"""Stage evaluate: base model + adapter -> val/test metrics, DVC plot data and PNGs."""

from __future__ import annotations

import argparse
import sys

from lora_core.config import load_params
from lora_core.errors import exit_on_user_error
from lora_core.eval_outputs import write_evaluation
from lora_core.files import staged
from lora_core.inference import load_for_inference
from lora_core.tokens import load_tokenized


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--plots", default="metrics/plots")
    args = parser.parse_args(argv)
    # The same load, merge, device and precision as `lora-sst2 predict`: the same logits.
    params = load_params(args.params)
    inference = load_for_inference(args.models, params)
    results = {}
    for name in ("val", "test"):
        split = load_tokenized(args.tokenized, name)
        results[name] = (inference.logits(split), split.labels)
    with staged() as out:
        resamples, names = params.evaluate.bootstrap_resamples, inference.config.labels
        scores = write_evaluation(out, results, args.metrics, args.plots, resamples, names)
    val, test = scores["val"], scores["test"]
    interval = f"[{test['accuracy_ci95_low']:.4f}, {test['accuracy_ci95_high']:.4f}]"
    print(
        f"val accuracy {val['accuracy']:.4f}, test accuracy {test['accuracy']:.4f} {interval} "
        f"(merged model, {inference.precision})"
    )


if __name__ == "__main__":
    sys.exit(main())
