"""Stage train: tokenized splits -> LoRA adapter, training metrics and curves."""

from __future__ import annotations

import argparse
import sys

from lora_core.config import load_params
from lora_core.distributed import launch, launched
from lora_core.errors import exit_on_user_error
from lora_core.tokens import read_task
from lora_core.training import train_adapter


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The stage's folders (dvc.yaml's cmd) and --no-progress."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--models", default="models")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    params = load_params(args.params)
    if params.train.processes > 1 and not launched():  # again, as torchrun's processes
        read_task(args.tokenized)  # missing or damaged data: one line here, not one a process
        return launch(params.train.processes, "stages.train", argv)
    progress = not args.no_progress
    trained = train_adapter(
        params, args.tokenized, args.models, args.metrics, __file__, progress=progress
    )
    for line in trained.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
