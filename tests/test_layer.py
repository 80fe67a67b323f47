import math

import pytest
import torch
from torch import nn

from lora_core.layer import LoRALinear, token_mask


def _layer(r: int = 4, alpha: float = 16.0, **kwargs) -> LoRALinear:
    torch.manual_seed(0)
    return LoRALinear(nn.Linear(12, 10), r=r, alpha=alpha, **kwargs)


def _randomize_b(layer: LoRALinear) -> None:
    with torch.no_grad():
        layer.lora_B.normal_()


@pytest.mark.parametrize("r", [1, 4, 8])
def test_layer_init_equals_base_exactly(r):
    layer = _layer(r=r, dropout=0.1).eval()
    x = torch.randn(3, 5, 12)
    assert torch.equal(layer(x), layer.base(x))
    assert layer.lora_A.shape == (r, 12)
    assert layer.lora_B.shape == (10, r)
    assert torch.count_nonzero(layer.lora_B) == 0
    assert torch.count_nonzero(layer.lora_A) == r * 12


def test_layer_forward_is_base_plus_scaled_low_rank_update():
    layer = _layer(r=4, alpha=16.0)
    _randomize_b(layer)
    x = torch.randn(7, 12)
    expected = x @ layer.base.weight.T + layer.base.bias
    expected = expected + 4.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected)


def test_layer_rslora_scaling_is_alpha_over_sqrt_r():
    assert _layer(r=16, alpha=8.0).scaling == 0.5
    assert _layer(r=16, alpha=8.0, rslora=True).scaling == 8.0 / math.sqrt(16)


def test_layer_freezes_base_and_trains_only_a_and_b():
    layer = _layer()
    trainable = {n for n, p in layer.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B"}


def test_layer_merge_keeps_eval_output():
    layer = _layer().eval()
    _randomize_b(layer)
    x = torch.randn(4, 12)
    before = layer(x)
    layer.merge()
    torch.testing.assert_close(layer(x), before, atol=1e-5, rtol=1e-5)


def test_layer_merge_twice_is_a_no_op_and_unmerge_restores():
    layer = _layer()
    _randomize_b(layer)
    initial = layer.base.weight.detach().clone()
    layer.merge()
    merged = layer.base.weight.detach().clone()
    layer.merge()  # calling merge() twice must not add the update twice
    torch.testing.assert_close(layer.base.weight, initial + layer.delta_weight())
    assert torch.equal(layer.base.weight, merged)
    layer.unmerge()
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, initial)
    assert not layer.merged


def test_layer_merge_computes_delta_in_float32_and_casts_once():
    layer = _layer()
    _randomize_b(layer)
    layer.base.to(torch.bfloat16)
    initial = layer.base.weight.detach().float().clone()
    layer.merge()
    assert layer.base.weight.dtype == torch.bfloat16
    expected = (initial + layer.delta_weight()).to(torch.bfloat16)
    assert torch.equal(layer.base.weight, expected)


def test_layer_refuses_to_merge_non_finite_delta():
    layer = _layer()
    with torch.no_grad():
        layer.lora_B[0, 0] = float("nan")
    before = layer.base.weight.detach().clone()
    with pytest.raises(ValueError, match="NaN or inf"):
        layer.merge()
    assert not layer.merged
    assert torch.equal(layer.base.weight, before)


def test_layer_rejects_rank_zero_and_non_linear():
    with pytest.raises(ValueError, match="r must be >= 1, got 0"):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=1.0)
    with pytest.raises(TypeError, match="got Conv1d"):
        LoRALinear(nn.Conv1d(4, 4, 1), r=1, alpha=1.0)


def test_token_dropout_keeps_or_drops_whole_tokens_of_a_x():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(8, 6), r=3, alpha=6, dropout=0.5, dropout_mode="token").train()
    assert isinstance(layer.dropout, nn.Identity) and layer.token_dropout == 0.5
    nn.init.normal_(layer.lora_B)
    x = torch.randn(4, 10, 8)
    torch.manual_seed(1)
    update = layer(x) - layer.base(x)
    torch.manual_seed(1)
    keep = torch.empty(4, 10, 1).bernoulli_(0.5)  # one draw per token, in the layer's order
    expected = ((x @ layer.lora_A.T) * keep) @ layer.lora_B.T * (layer.scaling * 2)
    torch.testing.assert_close(update, expected, atol=1e-5, rtol=0)
    dropped = keep.squeeze(-1) == 0
    assert 0 < int(dropped.sum()) < 40 and bool((update[dropped] == 0).all())
    layer.eval()  # no dropout at inference: the plain update
    plain = x @ layer.lora_A.T @ layer.lora_B.T * layer.scaling
    torch.testing.assert_close(layer(x) - layer.base(x), plain, atol=1e-5, rtol=0)


def test_token_dropout_mask_is_in_the_compute_dtype_with_the_scale_on_lora():
    layer = LoRALinear(nn.Linear(8, 6), r=2, alpha=4, dropout=0.1, dropout_mode="token").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = torch.nn.functional.linear(torch.randn(3, 5, 8), layer.lora_A)
        mask = token_mask(hidden, 0.1)
    assert mask.dtype == torch.bfloat16 and mask.shape == (3, 5, 1)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_element_dropout_is_the_layers_default_and_the_mode_is_checked():
    layer = LoRALinear(nn.Linear(8, 6), r=2, alpha=4, dropout=0.1)
    assert isinstance(layer.dropout, nn.Dropout) and layer.token_dropout == 0.0
    with pytest.raises(ValueError, match="dropout_mode must be in"):
        LoRALinear(nn.Linear(8, 6), r=2, alpha=4, dropout=0.1, dropout_mode="row")
