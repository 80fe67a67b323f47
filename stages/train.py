"""Stage train: tokenized splits -> LoRA adapter, training metrics and curves."""

from __future__ import annotations

import argparse
import functools
import sys

from lora_core.checkpoint import checkpoint_folder, checkpointing, finish
from lora_core.config import load_params
from lora_core.distributed import joined, launch, launched
from lora_core.errors import exit_on_user_error
from lora_core.files import staged
from lora_core.live import TrainLog, live_folder
from lora_core.loop import train_model
from lora_core.model import classifier_for_training
from lora_core.runtime import resolve_device, resolve_precision, use_attention
from lora_core.tokens import load_tokenized, read_task
from lora_core.train_outputs import (
    best_epoch_line,
    checkpoint_line,
    reserve_training,
    write_training,
)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__)
    for name, default in (("params", "params.yaml"), ("tokenized", "data/tokenized")):
        parser.add_argument(f"--{name}", default=default)
    parser.add_argument("--models", default="models")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    params, task = load_params(args.params), read_task(args.tokenized)
    train, val = (load_tokenized(args.tokenized, name) for name in ("train", "val"))
    if params.train.processes > 1 and not launched():  # again, as torchrun's processes
        return launch(params.train.processes, "stages.train", argv)
    device = resolve_device(params.train.device)
    precision = resolve_precision(params.train.precision, device)
    folder = checkpoint_folder(args.models)  # models/checkpoint, persist: true in dvc.yaml
    with joined(device) as world:
        model = classifier_for_training(params, labels=task.labels)
        attention = use_attention(model, params.model.attention, device)
        ckpt = checkpointing(folder, params, args.tokenized, __file__, model, world, len(train))
        options = {"eval_batch_size": params.evaluate.batch_size, "progress": not args.no_progress}
        run = functools.partial(train_model, model, train, val, params.train, device, precision)
        run = functools.partial(run, world=world, checkpoints=ckpt, **options)
        if not world.main:  # rank 0 alone writes and logs
            run()
            return 0
        with staged() as out:  # all outputs appear together, after training, or none do
            paths = reserve_training(out, args.models, args.metrics)
            log = TrainLog(live_folder(args.metrics), params)  # DVCLive, while it trains
            result = run(log=log)
            write_training(paths, params, task, model, result, device, precision, attention, log)
        finish(folder)  # a later run (dvc repro --force) starts fresh
    print(checkpoint_line(result), best_epoch_line(result, precision), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
