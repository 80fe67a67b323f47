"""`lora-sst2 info`: what an adapter is (its classes and text columns too), how big, and how
well the run that made it did."""

from __future__ import annotations

import argparse
from pathlib import Path

from lora_core.errors import damaged
from lora_core.pretrained import BASE_DIR
from lora_core.readers import read_json


def adapter_info(
    adapter_dir: str | Path, metrics_dir: str | Path | None, base_dir: str | Path = BASE_DIR
) -> dict:
    """The adapter's config and sizes, plus every score in ``metrics_dir/eval.json``
    (none when ``metrics_dir`` is None)."""
    from lora_core.adapter import load_trained, weights_file  # torch: not for `--help`
    from lora_core.inject import count_parameters

    model, config = load_trained(adapter_dir, base_dir)
    trainable, total = count_parameters(model)
    described = config.to_json()
    lora = described["lora"]
    info = {
        "base_model": config.base_model,
        "labels": described["labels"],  # class names in id order, any number
        "text_columns": described["text_columns"],  # one, or a sentence pair
        "mode": config.mode,
        **{k: lora[k] for k in ("r", "alpha", "targets", "dropout", "dropout_mode", "rslora")},
        "trainable_params": trainable,
        "total_params": total,
        "adapter_bytes": weights_file(adapter_dir).stat().st_size,
    }
    if metrics_dir is not None:
        info.update(scores(Path(metrics_dir) / "eval.json"))
    return info


def scores(eval_path: Path) -> dict:
    """``split.metric -> value`` from eval.json; nothing when it does not exist yet."""
    if not eval_path.exists():
        return {}
    raw = read_json(eval_path)
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise damaged(eval_path, "evaluate")
    out = {}
    for split, values in raw.items():
        for key, value in values.items():
            if isinstance(value, dict):  # per_class: one line a class
                for name, v in value.items():
                    out[f"{split}.{key}.{name}"] = _compact(v)
            else:
                out[f"{split}.{key}"] = value
    return out


def _compact(scores) -> str:
    """A class's scores on one line: ``precision 0.81 recall 0.85 f1 0.83 support 428``."""
    if not isinstance(scores, dict):
        return str(scores)
    return " ".join(f"{k} {v}" for k, v in scores.items())


def is_project_adapter(args: argparse.Namespace) -> bool:
    """Whether --adapter is the project's own models/, the adapter metrics/ scores."""
    root = args.project_root
    return root is not None and Path(args.adapter).resolve() == (root / "models").resolve()


def metrics_to_show(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The metrics folder to read, or None and the line that says why its scores are not
    shown: the project's metrics/ score models/, not another adapter (--metrics: yours)."""
    if "metrics" not in args.defaulted or is_project_adapter(args):
        return args.metrics, None
    if args.project_root is None:
        return None, None
    other = f"{Path(args.adapter)}/"
    return None, (
        f"not shown: the scores in metrics/ belong to the project's models/ adapter, not to {other}"
    )


def format_table(info: dict) -> list[str]:
    """``key  value`` lines, the values aligned two spaces after the longest key."""
    width = max(map(len, info))
    return [f"{key:<{width}}  {value}" for key, value in info.items()]


def run_info(args: argparse.Namespace) -> int:
    metrics, why_not = metrics_to_show(args)
    info = adapter_info(args.adapter, metrics, args.base_dir)
    if why_not is not None:
        info["metrics"] = why_not
    print("\n".join(format_table(info)))
    return 0


def register(subparsers) -> None:
    """Add `info` to the CLI."""
    i = subparsers.add_parser("info", help="describe an adapter and its run's metrics")
    i.add_argument(
        "--adapter", help="folder with adapter.* or PEFT's files (default: the project's models/)"
    )
    i.add_argument(
        "--metrics",
        help="folder with the eval.json to show (default: the project's metrics/, shown only "
        "for the project's models/ adapter)",
    )
    i.set_defaults(run=run_info, project_defaults={"adapter": "models", "metrics": "metrics"})
