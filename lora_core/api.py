"""The Python API: ``lora_core.load()`` finds the adapter, params and base models as
`lora-sst2 predict` does, and returns the ``Predictor`` that command scores with."""

from __future__ import annotations

from pathlib import Path

from lora_core.errors import LoraSst2Error
from lora_core.files import PROJECT_FILE, find_project_root
from lora_core.predictor import Predictor
from lora_core.pretrained import BASE_DIR

ADAPTER, PARAMS = "models", "params.yaml"  # under the project root


def load(adapter: str | Path | None = None, params: str | Path | None = None) -> Predictor:
    """A ``Predictor`` for ``adapter``: a trained adapter folder, or a `lora-sst2 export
    --peft` folder; by default the project's models/.

    As `lora-sst2 predict`: the project is the working directory's (outside any, the one
    holding ``params`` or ``adapter``); its params.yaml, when there is one and ``params`` is
    not given, sets the device and evaluate's precision and batch size; the base model is
    read from its models/base/ when there (else the hub's cache).
    """
    starts = [Path.cwd(), *([Path(params).resolve().parent] if params is not None else [])]
    starts += [Path(adapter)] if adapter is not None else []
    root = next(filter(None, map(find_project_root, starts)), None)
    if root is None and adapter is None:
        raise LoraSst2Error(
            f"no lora-sst2 project ({PROJECT_FILE}) was found in {Path.cwd()} or any folder "
            "above it: run from inside the project or give load() an adapter folder"
        )
    base = root if root is not None else Path.cwd()
    if params is None and (base / PARAMS).exists():
        params = base / PARAMS
    return Predictor(adapter if adapter is not None else base / ADAPTER, params, base / BASE_DIR)
