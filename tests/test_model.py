"""The classifier as the train stage builds it: LoRA in place, exact trainable sets."""

import pytest
import torch

from lora_core.config import LoraConfig, ModelConfig, Params, TrainConfig
from lora_core.inject import count_parameters
from lora_core.layer import LoRALinear
from lora_core.model import build_classifier, classifier_for_training, set_model_dropout
from tests.tiny import write_tiny_model

NAME = "tiny"
CLASSIFIER = 32 * 2 + 2  # hidden 32 -> 2 labels, with bias


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    write_tiny_model(base / NAME)
    return base


@pytest.mark.parametrize(("r", "targets"), [(1, ("query",)), (4, ("query", "value")), (8, ())])
def test_build_classifier_trains_lora_and_head_exactly(base_dir, r, targets):
    lora = LoraConfig(r=r, targets=targets or ("query", "key", "value", "dense"))
    model = build_classifier(ModelConfig(name=NAME), lora, base_dir=base_dir)
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    # 2 layers; "dense" ends attention.output.dense, intermediate.dense, output.dense in
    # each layer and the pooler's dense
    assert len(layers) == {1: 2, 2: 4, 4: 2 * 6 + 1}[len(lora.targets)]
    lora_params = sum(r * (m.in_features + m.out_features) for m in layers)
    trainable, total = count_parameters(model)
    assert trainable == lora_params + CLASSIFIER
    assert total == 21_410 + lora_params  # the tiny BERT's own 21,410 weights, frozen


def test_classifier_for_training_equals_build_classifier_from_params(base_dir):
    params = Params(
        model=ModelConfig(name=NAME), train=TrainConfig(seed=7, model_dropout=0.0, mode="lora")
    )
    ours = classifier_for_training(params, base_dir).state_dict()
    same = build_classifier(
        params.model, params.lora, "lora", False, 7, base_dir=base_dir, model_dropout=0.0
    ).state_dict()
    assert set(ours) == set(same)
    for key in ours:
        torch.testing.assert_close(ours[key], same[key], rtol=0, atol=0)


def test_set_model_dropout_counts_the_models_own_dropouts(base_dir):
    lora = LoraConfig(dropout=0.1, dropout_mode="element")
    model = build_classifier(ModelConfig(name=NAME), lora, base_dir=base_dir)
    # embeddings 1 + per layer (attention, attention output, output) 3 x 2 + classifier 1
    assert set_model_dropout(model, 0.0) == 8
    lora_dropouts = {m.dropout.p for m in model.modules() if isinstance(m, LoRALinear)}
    assert lora_dropouts == {0.1}
