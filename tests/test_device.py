"""Device policy: device, precision and attention resolved, and autocast."""

import pytest
import torch

from lora_core.device import (
    autocast,
    resolve_attention,
    resolve_device,
    resolve_precision,
    use_attention,
)
from lora_core.errors import LoraSst2Error


def test_resolve_precision_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    expected = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    assert resolve_precision("auto", cpu) == expected
    with pytest.raises(LoraSst2Error) as info:
        resolve_precision("fp16", cpu)
    assert str(info.value) == (
        "train.precision = 'fp16' needs a CUDA GPU: on CPU use bf16, fp32 or auto"
    )
    with pytest.raises(LoraSst2Error, match=r"^evaluate\.precision = 'fp16' needs a CUDA GPU"):
        resolve_precision("fp16", cpu, "evaluate.precision")


def _fake_gpu(monkeypatch, name: str, capability: tuple[int, int], with_argument: bool = True):
    """Pretend ``torch.cuda`` sees one GPU: native bf16 from compute capability 8.0 on, and
    bf16 "supported" through emulation below it unless ``including_emulation=False``."""
    native = capability >= (8, 0)

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation

    def is_bf16_supported_before_the_argument() -> bool:  # says yes on emulation too
        return True

    fake = is_bf16_supported if with_argument else is_bf16_supported_before_the_argument
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", fake)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.version, "hip", None)


@pytest.mark.parametrize("with_argument", [True, False])
def test_resolve_precision_on_an_ampere_gpu_takes_native_bf16(monkeypatch, with_argument):
    _fake_gpu(monkeypatch, "NVIDIA A100-SXM4-40GB", (8, 0), with_argument)
    cuda = torch.device("cuda")
    assert [resolve_precision(n, cuda) for n in ("auto", "bf16", "fp16", "fp32")] == [
        "bf16",
        "bf16",
        "fp16",
        "fp32",
    ]


@pytest.mark.parametrize("with_argument", [True, False])
def test_resolve_precision_on_a_t4_takes_fp16_not_emulated_bf16(monkeypatch, with_argument):
    _fake_gpu(monkeypatch, "Tesla T4", (7, 5), with_argument)
    cuda = torch.device("cuda")
    assert torch.cuda.is_bf16_supported()  # what torch says by default: emulation counts
    assert [resolve_precision(n, cuda) for n in ("auto", "fp16", "fp32")] == [
        "fp16",
        "fp16",
        "fp32",
    ]
    with pytest.raises(LoraSst2Error) as info:
        resolve_precision("bf16", cuda)
    assert str(info.value) == (
        "train.precision = 'bf16' but this GPU (Tesla T4) has no native bf16, only slow emulation: "
        "use fp16 or auto"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_resolve_device_cuda_without_gpu_is_a_clear_error():
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(LoraSst2Error, match="train.device = 'cuda' but no CUDA GPU is visible"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [
        ("auto", "cpu", "eager"),
        ("auto", "cuda", "sdpa"),
        ("sdpa", "cpu", "sdpa"),
        ("eager", "cuda", "eager"),
    ],
)
def test_resolve_attention_auto_picks_per_device(name, device, expected):
    assert resolve_attention(name, torch.device(device)) == expected


def test_use_attention_switches_kernels_not_the_maths():
    from tests.tiny import tiny_classifier

    model = tiny_classifier()
    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]])
    mask = (ids != 0).long()
    logits = {}
    for name in ("sdpa", "eager"):
        assert use_attention(model, name, torch.device("cpu")) == name
        assert model.config._attn_implementation == name
        logits[name] = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-6, rtol=0)


def test_autocast_bf16_runs_linear_in_bf16_and_fp32_does_not():
    layer, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    with autocast("bf16", torch.device("cpu")):
        assert layer(x).dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert layer(x).dtype == torch.float32
