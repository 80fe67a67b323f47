import re

import pytest
import torch

from lora_core.batches import collate
from lora_core.config import LoraConfig, ModelConfig, TrainConfig
from lora_core.errors import LoraSst2Error
from lora_core.inject import lora_state_dict
from lora_core.layer import LoRALinear
from lora_core.loop import TrainResult, train_model
from lora_core.model import build_classifier
from lora_core.pretrained import load_tokenizer
from lora_core.step import make_step
from lora_core.tokens import tokenize
from lora_core.train_outputs import best_epoch_line
from tests.tiny import tiny_sentences, write_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    write_tiny_model(base / "tiny")
    tokenizer = load_tokenizer("tiny", base_dir=base)
    rows = tiny_sentences(96, seed=0)
    split, _ = tokenize(tokenizer, [s for s, _ in rows], [y for _, y in rows], 32)
    return base, split


def _train(setup, **overrides):
    base, split = setup
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.01, "bucket_chunk": 2, **overrides})
    model = build_classifier(ModelConfig(name="tiny"), LoraConfig(), "lora", True, 0, base)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    result = train_model(model, split, split, cfg, torch.device("cpu"), "fp32", progress=False)
    return model, frozen, result


def test_train_updates_only_trainable_tensors_and_logs_every_window(setup):
    model, before, result = _train(setup)
    trainable = set(lora_state_dict(model))
    for name, value in model.state_dict().items():
        if name in before:
            assert torch.equal(value, before[name]) == (name not in trainable), name
    assert set(result.best_state) == trainable
    assert [p["step"] for p in result.curve] == [6, 12]  # 96/16 = 6 steps an epoch
    assert len(result.val_accuracy) == 2 and result.best_epoch in (1, 2)
    assert result.examples == 192


def test_train_is_deterministic_for_a_seed(setup):
    _, _, a = _train(setup)
    _, _, b = _train(setup)
    assert a.curve == b.curve
    for key, value in a.best_state.items():
        assert torch.equal(value, b.best_state[key])


def test_train_stops_at_first_non_finite_loss_with_step(setup):
    with pytest.raises(LoraSst2Error) as info:
        _train(setup, lr=1e4, max_grad_norm=1e9)
    message = str(info.value)
    assert message.startswith("training diverged: loss is nan at step ")
    assert message.endswith("lower train.lr (now 10000); no adapter or metrics were written")


@pytest.mark.parametrize("mode", ["element", "token"])
def test_model_dropout_sets_the_models_own_dropouts_not_loras(setup, mode):
    base, _ = setup
    lora_cfg = LoraConfig(dropout=0.2, dropout_mode=mode)
    model = build_classifier(ModelConfig(name="tiny"), lora_cfg, "lora", True, 0, base, 0.0)
    rates = {n: m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear) and module.token_dropout:
            rates[f"{name}.token_dropout"] = module.token_dropout
    lora = {n: p for n, p in rates.items() if ".query." in n or ".value." in n}
    own = {n: p for n, p in rates.items() if n not in lora}
    assert set(lora.values()) == {0.2} and len(lora) == 2 * 2  # 2 layers x query, value
    assert set(own.values()) == {0.0} and len(own) == 1 + 2 * 3 + 1  # embeddings, layers, head
    unchanged = build_classifier(ModelConfig(name="tiny"), lora_cfg, "lora", True, 0, base)
    assert {m.p for n, m in unchanged.named_modules() if n in own} == {0.1}  # the config's


@pytest.mark.parametrize(("model_dropout", "random"), [(0.0, False), (None, True)])
def test_model_dropout_zero_makes_training_forward_deterministic(setup, model_dropout, random):
    base, split = setup
    model = build_classifier(
        ModelConfig(name="tiny"), LoraConfig(dropout=0.0), "lora", True, 0, base, model_dropout
    ).train()
    batch = collate(split, torch.arange(8).numpy())
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    first, second = model(**inputs).logits, model(**inputs).logits
    assert torch.equal(first, second) != random


def test_train_prints_each_epochs_val_accuracy_with_what_it_was_measured_in(setup, capsys):
    base, split = setup
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, bucket_chunk=2)
    model = build_classifier(ModelConfig(name="tiny"), LoraConfig(), "lora", True, 0, base)
    result = train_model(model, split, split, cfg, torch.device("cpu"), "fp32", progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for epoch, (line, accuracy) in enumerate(zip(lines, result.val_accuracy), start=1):
        head = f"epoch {epoch}: val accuracy {accuracy:.4f} (fp32, during training), "
        assert line.startswith(head) and re.fullmatch(r"\d+ ex/s", line[len(head) :]), line


def test_best_epoch_line_says_training_measured_it_and_evaluate_rescores_it():
    result = TrainResult(val_accuracy=[0.8, 0.84333, 0.84], best_epoch=2)
    assert best_epoch_line(result, "bf16") == (
        "best epoch 2: val accuracy 0.8433 (bf16, during training; evaluate's "
        "metrics/eval.json scores the merged model in evaluate.precision)"
    )


@pytest.mark.parametrize("mode", ["token", "element"])
def test_frozen_linears_stored_in_bf16_train_bitwise_as_autocast_casting_them(setup, mode):
    # bf16 autocast runs on any CPU; 2 epochs of 12 steps, LoRA dropout on (same draws).
    base, split = setup
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, bucket_chunk=2, seed=3)
    lora = LoraConfig(dropout_mode=mode)
    runs = {}
    for stored in (False, True):
        model = build_classifier(ModelConfig(name="tiny"), lora, "lora", False, 0, base)
        result = train_model(
            model, split, split, cfg, torch.device("cpu"), "bf16", progress=False,
            frozen_in_compute_dtype=stored,
        )  # fmt: skip
        runs[stored] = model, result
    (model_32, old), (model_16, new) = runs[False], runs[True]
    assert [p["step"] for p in new.curve] == [12, 24]  # 24 steps: windows end with the epochs
    assert new.curve == old.curve and new.val_accuracy == old.val_accuracy
    assert new.best_state.keys() == old.best_state.keys()
    for name, tensor in old.best_state.items():
        assert torch.equal(new.best_state[name], tensor), name
    dtypes = {name: p.dtype for name, p in model_16.named_parameters()}
    bf16 = {name for name, dtype in dtypes.items() if dtype == torch.bfloat16}
    # per layer: query and value (LoRA's base), key, attention output, intermediate, output;
    # and the frozen pooler: 13 linears, weight and bias each
    assert len(bf16) == 2 * (2 * 6 + 1) and all(".base." in n for n in bf16 if "query" in n)
    assert all(dtypes[n] == torch.float32 for n in dtypes if "lora_" in n or "LayerNorm" in n)
    assert dtypes["bert.embeddings.word_embeddings.weight"] == torch.float32
    assert dtypes["classifier.weight"] == torch.float32
    assert {p.dtype for p in model_32.parameters()} == {torch.float32}


def test_a_batch_of_one_row_takes_the_eager_forward_not_the_compiled_one(setup):
    base, split = setup
    model = build_classifier(ModelConfig(name="tiny"), LoraConfig(), "lora", True, 0, base)
    step = make_step(model, TrainConfig(), torch.device("cpu"), "fp32", 10)
    assert step.forward is step.eager is model  # not compiled: one forward
    rows = []
    step.forward = lambda **inputs: rows.append(len(inputs["input_ids"])) or model(**inputs)
    for size in (3, 1, 2, 1):
        step(collate(split, list(range(size))))
    assert rows == [3, 2]
