"""Build the SST-2 classifier from a hub id or a local folder, with LoRA in place."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from lora_core.config import LoraConfig, ModelConfig
from lora_core.errors import LoraSst2Error
from lora_core.inject import inject_lora, mark_trainable
from lora_core.io import quiet_hub
from lora_core.layer import LoRALinear

LABELS = ("negative", "positive")
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
            f"the weights of model {name!r} are damaged ({err}): copy model.safetensors into "
            f"{Path(base_dir) / name}/ again (README section 'Offline')"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return LoraSst2Error(
        f"cannot load model {name!r}: {first} -- put the model in {Path(base_dir) / name}/ "
        "(config.json, model.safetensors, tokenizer files; README section 'Offline')"
    )


def load_tokenizer(name: str, base_dir: str | Path = BASE_DIR):
    """The fast tokenizer of ``name``, from the local mirror first."""
    from transformers import AutoTokenizer

    source = resolve_model_source(name, base_dir)
    try:
        with quiet_hub():
            return AutoTokenizer.from_pretrained(source, use_fast=True)
    except (OSError, ValueError) as err:
        raise _offline_hint(name, base_dir, err) from None


def load_base_model(name: str, base_dir: str | Path = BASE_DIR) -> nn.Module:
    """The pretrained encoder with a fresh 2-label classification head, in float32."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    source = resolve_model_source(name, base_dir)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected
    hf_logging.disable_progress_bar()
    try:
        with quiet_hub():
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                use_safetensors=True,  # never unpickle a .bin checkpoint
                num_labels=len(LABELS),
                id2label=dict(enumerate(LABELS)),
                label2id={label: i for i, label in enumerate(LABELS)},
            )
    except (OSError, ValueError, SafetensorError) as err:
        raise _offline_hint(name, base_dir, err) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model.float()


def set_model_dropout(model: nn.Module, p: float) -> int:
    """Set the model's own dropout rates to ``p``; returns how many modules were set.

    That is every ``nn.Dropout`` (embeddings, attention, hidden, classifier) except LoRA's
    own, which ``lora.dropout`` sets.
    """
    lora_dropouts = {id(m.dropout) for m in model.modules() if isinstance(m, LoRALinear)}
    own = [m for m in model.modules() if isinstance(m, nn.Dropout) and id(m) not in lora_dropouts]
    for module in own:
        module.p = p
    return len(own)


def build_classifier(
    model_cfg: ModelConfig,
    lora_cfg: LoraConfig,
    mode: str = "lora",
    train_pooler: bool = False,
    seed: int = 0,
    base_dir: str | Path = BASE_DIR,
    model_dropout: float | None = None,
) -> nn.Module:
    """Base model + LoRA (in ``lora`` mode) + trainable flags, seeded for a repeatable init.

    ``model_dropout`` replaces the checkpoint's own dropout rate for training (None keeps it);
    at evaluation dropout is off either way.
    """
    torch.manual_seed(seed)  # the classifier head and LoRA A are drawn from this seed
    model = load_base_model(model_cfg.name, base_dir)
    if mode == "lora":
        inject_lora(
            model,
            targets=lora_cfg.targets,
            r=lora_cfg.r,
            alpha=lora_cfg.alpha,
            dropout=lora_cfg.dropout,
            rslora=lora_cfg.rslora,
        )
    mark_trainable(model, mode=mode, train_pooler=train_pooler)
    if model_dropout is not None:
        set_model_dropout(model, model_dropout)
    return model


def check_tokenizer_fits(cfg: ModelConfig, tokenizer, base_dir: str | Path = BASE_DIR) -> None:
    """Refuse a max_length beyond the model's positions, or a tokenizer the model can't embed."""
    from transformers import AutoConfig

    source = resolve_model_source(cfg.name, base_dir)
    try:
        with quiet_hub():
            config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise _offline_hint(cfg.name, base_dir, err) from None
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
