import copy

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification

from lora_core import (
    LoRALinear,
    LoraSst2Error,
    count_parameters,
    inject_lora,
    load_lora_state_dict,
    lora_state_dict,
    mark_trainable,
    merge_lora,
    unmerge_lora,
)
from lora_core.inject import trainable_parameters
from tests.tiny import tiny_classifier

INPUT_IDS = torch.tensor([[2, 5, 9, 14, 20, 3, 0, 0], [2, 7, 8, 11, 12, 13, 16, 3]])
MASK = (INPUT_IDS != 0).long()


def _ours(model, **kwargs):
    kwargs = {"targets": ("query", "value"), "r": 4, "alpha": 16.0, **kwargs}
    names = inject_lora(model, **kwargs)
    mark_trainable(model, mode="lora")
    return names


def _with_random_lora(model):
    torch.manual_seed(1)
    for layer in model.modules():
        if isinstance(layer, LoRALinear):
            with torch.no_grad():
                layer.lora_A.normal_(std=0.2)
                layer.lora_B.normal_(std=0.2)
    return model


def _peft_twin(base, ours):
    """PEFT's LoRA on a copy of ``base``, holding exactly our A and B values."""
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=4,
        lora_alpha=16,
        target_modules=["query", "value"],
        lora_dropout=0.0,
    )
    twin = peft.get_peft_model(copy.deepcopy(base), config)
    ours_params = dict(ours.named_parameters())
    with torch.no_grad():
        for name, param in twin.named_parameters():
            if ".lora_A.default." in name or ".lora_B.default." in name:
                key = name.removeprefix("base_model.model.").replace(".default.weight", "")
                param.copy_(ours_params[key])
    return twin


@pytest.fixture
def pair():
    base = tiny_classifier(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ours = copy.deepcopy(base)
    _ours(ours, dropout=0.0)
    _with_random_lora(ours)
    return base, ours, _peft_twin(base, ours)


def _logits(model):
    return model(input_ids=INPUT_IDS, attention_mask=MASK).logits


def test_inject_matches_peft_in_eval_mode(pair):
    _, ours, twin = pair
    ours.eval(), twin.eval()
    torch.testing.assert_close(_logits(ours), _logits(twin), atol=1e-6, rtol=0)


def test_inject_matches_peft_in_train_mode_without_dropout(pair):
    _, ours, twin = pair
    ours.train(), twin.train()
    torch.testing.assert_close(_logits(ours), _logits(twin), atol=1e-6, rtol=0)


def test_inject_matches_peft_after_merging(pair):
    _, ours, twin = pair
    ours.eval(), twin.eval()
    merge_lora(ours)
    merged_twin = twin.merge_and_unload()
    torch.testing.assert_close(_logits(ours), _logits(merged_twin), atol=1e-6, rtol=0)


def test_inject_gradients_match_peft(pair):
    _, ours, twin = pair
    labels = torch.tensor([0, 1])
    for model in (ours, twin):
        model.train()
        model(input_ids=INPUT_IDS, attention_mask=MASK, labels=labels).loss.backward()
    twin_params = dict(twin.named_parameters())
    checked = 0
    for name, param in ours.named_parameters():
        if name.endswith(("lora_A", "lora_B")):
            twin_grad = twin_params[f"base_model.model.{name}.default.weight"].grad
            torch.testing.assert_close(param.grad, twin_grad, atol=1e-6, rtol=1e-5)
            checked += 1
    assert checked == 2 * 2 * 2  # layers x (query, value) x (A, B)


def test_inject_trainable_count_equals_peft(pair):
    _, ours, twin = pair
    trainable, _ = count_parameters(ours)
    assert trainable == twin.get_nb_trainable_parameters()[0]


def test_inject_bert_base_r4_trains_exactly_148994_parameters():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2))
    _ours(model)
    trainable, total = count_parameters(model)
    # 12 layers x 2 targets x (768*4 + 4*768) LoRA + classifier 768*2 + 2
    assert trainable == 12 * 2 * (768 * 4 + 4 * 768) + 768 * 2 + 2 == 148_994
    assert total == 109_483_778 + 147_456


def test_inject_adapter_of_bert_base_r4_is_under_1mb(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2))
    _ours(model)
    path = tmp_path / "adapter.safetensors"
    save_file(lora_state_dict(model), str(path))
    assert path.stat().st_size < 1_000_000


def test_inject_logits_at_init_equal_base_exactly():
    base = tiny_classifier()
    ours = copy.deepcopy(base)
    _ours(ours, dropout=0.1)
    ours.eval()
    assert torch.equal(_logits(ours), _logits(base))


def test_inject_returns_replaced_names_by_suffix_or_regex():
    names = _ours(tiny_classifier())
    assert names == [
        f"bert.encoder.layer.{i}.attention.self.{t}" for i in (0, 1) for t in ("query", "value")
    ]
    regex_names = inject_lora(tiny_classifier(), targets=r".*\.0\.attention\.self\.key")
    assert regex_names == ["bert.encoder.layer.0.attention.self.key"]


def test_inject_without_any_match_raises_clear_error():
    with pytest.raises(LoraSst2Error, match=r"lora.targets = \('qkv',\) matches no nn.Linear"):
        inject_lora(tiny_classifier(), targets=["qkv"])


@pytest.mark.parametrize(
    ("mode", "pooler", "expected"),
    [
        ("lora", False, 2 * 2 * (32 * 4 + 4 * 32) + 32 * 2 + 2),
        ("lora", True, 2 * 2 * (32 * 4 + 4 * 32) + 32 * 2 + 2 + 32 * 32 + 32),
        ("head", False, 32 * 2 + 2),
        ("head", True, 32 * 2 + 2 + 32 * 32 + 32),
    ],
)
def test_mark_trainable_counts(mode, pooler, expected):
    model = tiny_classifier()
    if mode == "lora":
        inject_lora(model, r=4, alpha=16.0)
    mark_trainable(model, mode=mode, train_pooler=pooler)
    assert count_parameters(model)[0] == expected
    trains = trainable_parameters(model)
    assert sum(p.numel() for p in trains.values()) == expected
    assert list(trains) == [n for n, p in model.named_parameters() if p.requires_grad]


def test_lora_state_dict_has_exactly_adapter_and_head_keys():
    model = tiny_classifier()
    _ours(model)
    lora = {
        f"bert.encoder.layer.{i}.attention.self.{t}.lora_{m}"
        for i in (0, 1)
        for t in ("query", "value")
        for m in "AB"
    }
    assert set(lora_state_dict(model)) == lora | {"classifier.weight", "classifier.bias"}


def test_load_lora_state_dict_round_trips():
    source = _with_random_lora(tiny_classifier())
    _ours(source)
    _with_random_lora(source)
    target = tiny_classifier(seed=5)
    _ours(target)
    load_lora_state_dict(target, lora_state_dict(source))
    for key, value in lora_state_dict(source).items():
        assert torch.equal(lora_state_dict(target)[key], value)


def test_load_lora_state_dict_names_missing_unexpected_and_shapes():
    model = tiny_classifier()
    _ours(model)
    sd = lora_state_dict(model)
    del sd["classifier.bias"]
    sd["extra.lora_A"] = torch.zeros(1)
    with pytest.raises(LoraSst2Error, match=r"missing keys classifier.bias, unexpected keys extra"):
        load_lora_state_dict(model, sd)
    sd = lora_state_dict(model)
    sd["classifier.bias"] = torch.zeros(3)
    with pytest.raises(LoraSst2Error, match=r"classifier.bias \(3,\) vs model \(2,\)"):
        load_lora_state_dict(model, sd)


def test_merge_unmerge_restores_weights_and_merge_twice_is_no_op():
    model = _with_random_lora(tiny_classifier())
    _ours(model)
    _with_random_lora(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    merge_lora(model)
    once = {k: v.clone() for k, v in model.state_dict().items()}
    merge_lora(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, once[key]), key
    unmerge_lora(model)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=1e-6, rtol=1e-6)
