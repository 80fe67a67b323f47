"""The one inference path: base model + adapter, merged, on params' device and precision."""

import numpy as np
import pytest
import torch
import yaml

from lora_core.config import Params, load_params
from lora_core.errors import LoraSst2Error
from lora_core.inference import load_for_inference, predict_logits
from lora_core.layer import LoRALinear
from lora_core.tokens import load_tokenized


def test_load_for_inference_merges_on_params_device_and_precision(built_project, monkeypatch):
    monkeypatch.chdir(built_project)
    params = load_params()
    inference = load_for_inference("models", params)
    layers = [m for m in inference.model.modules() if isinstance(m, LoRALinear)]
    assert len(layers) == 4 and all(layer.merged for layer in layers)
    assert (inference.device, inference.precision) == (torch.device("cpu"), "fp32")
    assert inference.batch_size == params.evaluate.batch_size == 64
    split = load_tokenized("data/tokenized", "test")
    logits = inference.logits(split)
    assert logits.shape == (40, 2) and logits.dtype == np.float32
    np.testing.assert_array_equal(
        logits, predict_logits(inference.model, split, 64, inference.device, "fp32")
    )


def test_load_for_inference_checks_the_base_model_only_with_params(built_project, monkeypatch):
    monkeypatch.chdir(built_project)
    other = Params.from_dict(
        {**_raw(built_project), "model": {"name": "bert-base-uncased", "max_length": 32}}
    )
    with pytest.raises(LoraSst2Error, match="trained on 'sentence-transformers/all-MiniLM-L6-v2'"):
        load_for_inference("models", other)
    assert load_for_inference("models").config.base_model.endswith("all-MiniLM-L6-v2")


def _raw(project):
    return yaml.safe_load((project / "params.yaml").read_text())
