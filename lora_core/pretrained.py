"""The pretrained base model and tokenizer: the local mirror first, then the hub."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from lora_core.config import ModelConfig
from lora_core.errors import LoraSst2Error, shown
from lora_core.files import quiet_hub

LABELS = ("negative", "positive")  # SST-2's, the default when no names are given
BASE_DIR = Path("models/base")


def resolve_model_source(name: str, base_dir: str | Path = BASE_DIR) -> str:
    """The local mirror ``<base_dir>/<name>/`` when it exists, else ``name`` itself."""
    local = Path(base_dir) / name
    if local.is_dir():
        return str(local)
    return name


def _offline_hint(name: str, base_dir: str | Path, err: Exception) -> LoraSst2Error:
    if isinstance(err, SafetensorError):
        return LoraSst2Error(
            f"the weights of model {shown(name)} are damaged ({err}): copy model.safetensors into "
            f"{Path(base_dir) / name}/ again (README section 'Offline')"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if not isinstance(err, OSError | ValueError):  # transformers met a file of the wrong shape
        first = f"its files are damaged ({type(err).__name__}: {first})"
    return LoraSst2Error(
        f"cannot load model {shown(name)}: {first} -- put the model in {Path(base_dir) / name}/ "
        "(config.json, model.safetensors, tokenizer files; README section 'Offline')"
    )


def from_mirror_or_hub(name: str, base_dir: str | Path, load: Callable[[str], Any]) -> Any:
    """``load(source)`` from the mirror or the hub; a failure is one line naming the mirror."""
    try:
        with quiet_hub():
            return load(resolve_model_source(name, base_dir))
    # TypeError, KeyError, AttributeError: a config.json that parses but is not a config
    except (OSError, ValueError, SafetensorError, TypeError, KeyError, AttributeError) as err:
        raise _offline_hint(name, base_dir, err) from None


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No info notices and no progress bars from transformers; both restored afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # e.g. the expected "newly initialized classifier" notice
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(name: str, base_dir: str | Path = BASE_DIR):
    """The fast tokenizer of ``name``, from the local mirror first."""
    from transformers import AutoTokenizer

    return from_mirror_or_hub(
        name, base_dir, lambda source: AutoTokenizer.from_pretrained(source, use_fast=True)
    )


def load_base_model(name: str, base_dir: str | Path = BASE_DIR, labels: tuple[str, ...] = LABELS):
    """The pretrained encoder with a fresh classification head for ``labels``, in float32."""
    from transformers import AutoModelForSequenceClassification

    def load(source: str):
        return AutoModelForSequenceClassification.from_pretrained(
            source,
            use_safetensors=True,  # never unpickle a .bin checkpoint
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )

    with quiet_transformers():
        return from_mirror_or_hub(name, base_dir, load).float()


def check_tokenizer_fits(cfg: ModelConfig, tokenizer, base_dir: str | Path = BASE_DIR) -> None:
    """Refuse a max_length beyond the model's positions, or a tokenizer the model can't embed."""
    from transformers import AutoConfig

    config = from_mirror_or_hub(cfg.name, base_dir, AutoConfig.from_pretrained)
    limit = config.max_position_embeddings
    if cfg.max_length > limit:
        raise LoraSst2Error(
            f"params.yaml: model.max_length = {cfg.max_length} is not allowed: "
            f"{cfg.name} takes at most {limit} tokens"
        )
    if len(tokenizer) > config.vocab_size:
        raise LoraSst2Error(
            f"the tokenizer of {cfg.name} has {len(tokenizer)} tokens but the model embeds "
            f"only {config.vocab_size}: tokenizer and weights come from different models"
        )
