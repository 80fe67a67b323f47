"""LoRALinear: a frozen nn.Linear plus a trainable low-rank update beside it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lora_core.config import DROPOUT_MODES


def token_mask(hidden: torch.Tensor, p: float) -> torch.Tensor:
    """One keep (1) or drop (0) per token, shaped ``(..., 1)`` to scale ``(..., r)`` rows.

    In ``hidden``'s dtype, where 0 and 1 are exact: the 1/(1-p) of inverted dropout is
    folded into LoRA's scaling instead, a float, so bf16 neither rounds it nor promotes the
    product to float32.
    """
    keep = torch.empty(*hidden.shape[:-1], 1, device=hidden.device, dtype=hidden.dtype)
    return keep.bernoulli_(1 - p)


class LoRALinear(nn.Module):
    """Wrap a frozen ``nn.Linear``: ``y = W x + b + scaling * B(A(dropout(x)))``.

    ``scaling`` is ``alpha / r``, or ``alpha / sqrt(r)`` with ``rslora=True``. A starts
    Kaiming-uniform and B at zero, so at init the output equals the base layer's exactly.
    ``dropout_mode="element"`` drops elements of x (PEFT's LoRA dropout); ``"token"`` drops
    whole tokens of A's output instead: ``B(m * A x)``, with m one draw per token.
    """

    def __init__(
        self,
        base: nn.Linear,
        r: int,
        alpha: float,
        dropout: float = 0.0,
        rslora: bool = False,
        dropout_mode: str = "element",
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {r}")
        if dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"LoRA dropout_mode must be in {DROPOUT_MODES}, got {dropout_mode!r}")
        self.base = base
        self.base.requires_grad_(False)
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r
        by_element = dropout > 0 and dropout_mode == "element"
        self.dropout = nn.Dropout(dropout) if by_element else nn.Identity()  # on x
        # On A x, one draw per token: a row mask commutes with A, so B(m A x) = B A (m x),
        # at one draw per token instead of one per input element (384 in all-MiniLM-L6-v2).
        self.token_dropout = dropout if dropout_mode == "token" else 0.0
        weight = base.weight
        # Same layout as nn.Linear weights: A is (r, in), B is (out, r).
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base(x)
        if self.merged:
            return result
        hidden = F.linear(self.dropout(x), self.lora_A)  # (..., r)
        scaling = self.scaling
        if self.training and self.token_dropout > 0:
            hidden = hidden * token_mask(hidden, self.token_dropout)
            scaling = scaling / (1 - self.token_dropout)  # inverted dropout's scale
        # scaling on B (out x r), not on the (..., out) product: one small multiply
        return result + F.linear(hidden, self.lora_B * scaling)

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling * B @ A`` in float32, shaped like the base weight."""
        return (self.lora_B.float() @ self.lora_A.float()) * self.scaling

    def merge(self) -> None:
        """Fold the update into the base weight; a no-op when already merged."""
        if self.merged:
            return
        delta = self.delta_weight()
        if not torch.isfinite(delta).all():
            raise ValueError("refusing to merge LoRA: the update B @ A has NaN or inf values")
        with torch.no_grad():
            merged = self.base.weight.float() + delta
            self.base.weight.copy_(merged.to(self.base.weight.dtype))
        self.merged = True

    def unmerge(self) -> None:
        """Take the update back out of the base weight; a no-op when not merged."""
        if not self.merged:
            return
        with torch.no_grad():
            restored = self.base.weight.float() - self.delta_weight()
            self.base.weight.copy_(restored.to(self.base.weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        token = f", token_dropout={self.token_dropout:g}" if self.token_dropout else ""
        return (
            f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}{token}"
        )
