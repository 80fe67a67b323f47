"""Device policy: which device, precision and attention a run uses, the hardware's names,
autocast, and where the frozen weights and the batches live. No model loading (inference.py)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch
from torch import nn

from lora_core.errors import LoraSst2Error


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> dict[str, str | None]:
    """What a result was computed on: bf16 results differ between CPU and GPU models."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cpu": cpu_model(), "gpu": gpu, "torch": torch.__version__}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LoraSst2Error("train.device = 'cuda' but no CUDA GPU is visible: use auto or cpu")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix math (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device, key: str = "train.precision") -> str:
    """Pick ``fp32``, ``bf16`` or ``fp16``; ``auto`` takes the fastest the device supports.
    An error names ``key``, the param that asked for ``name``.

    On CUDA, bf16 counts only where it is native (compute capability 8.0 or newer, or ROCm):
    torch's plain ``is_bf16_supported()`` also says yes on a T4 or V100, which only emulate
    bf16, slower than fp16 with its gradient scaler (pytorch/pytorch#148322).
    """
    if device.type == "cuda":
        try:
            bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch without the argument: ROCm, or CUDA from Ampere (8.0) on
            native = torch.cuda.get_device_capability(device) >= (8, 0)
            bf16 = bool(torch.version.hip) or native
        if name == "auto":
            return "bf16" if bf16 else "fp16"
        if name == "bf16" and not bf16:
            gpu = torch.cuda.get_device_name(device)
            raise LoraSst2Error(
                f"{key} = 'bf16' but this GPU ({gpu}) has no native bf16, only slow "
                "emulation: use fp16 or auto"
            )
        return name
    if name == "fp16":
        raise LoraSst2Error(f"{key} = 'fp16' needs a CUDA GPU: on CPU use bf16, fp32 or auto")
    if name == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return name


# What model.attention = auto picks, measured (docs/performance.md): at SST-2's ~14 tokens
# the plain matmul-softmax-matmul beats the fused SDPA kernel on the CPU.
AUTO_ATTENTION = {"cpu": "eager", "cuda": "sdpa"}


def resolve_attention(name: str, device: torch.device) -> str:
    """transformers' ``attn_implementation`` for ``model.attention`` on ``device``."""
    return AUTO_ATTENTION.get(device.type, "sdpa") if name == "auto" else name


def use_attention(model: nn.Module, name: str, device: torch.device) -> str:
    """Switch ``model`` to the attention ``name`` resolves to on ``device``; returns it.

    Same maths either way (softmax(QK^T/sqrt(d)) V with the padding mask), other kernels.
    """
    implementation = resolve_attention(name, device)
    model.set_attn_implementation(implementation)
    return implementation


COMPUTE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device):
    """Autocast context for ``precision``; trainable tensors and optimizer state stay float32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=COMPUTE_DTYPES[precision])


def store_frozen_linears(model: nn.Module, precision: str) -> int:
    """Store every frozen ``nn.Linear``'s weight and bias in ``precision``'s compute dtype.

    Autocast casts an fp32 weight to bf16 or fp16 for every matmul, at every step; its cast
    cache keeps only weights that require grad, so each frozen weight was copied again at
    every step. Stored in that dtype once, with the same rounding, they are not: training is
    bitwise the same (tests/test_loop.py). LayerNorm and embeddings stay float32, as autocast
    runs them in float32 anyway. Returns how many linears were stored; none in fp32.
    """
    dtype = COMPUTE_DTYPES.get(precision)
    if dtype is None:
        return 0
    frozen = [
        module
        for module in model.modules()
        if isinstance(module, nn.Linear) and not any(p.requires_grad for p in module.parameters())
    ]
    for module in frozen:
        module.to(dtype)
    return len(frozen)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on ``device``: pinned, non-blocking copies on CUDA; as is on CPU."""
    if device.type != "cuda":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
