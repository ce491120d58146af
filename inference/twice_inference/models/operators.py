"""Kernel-level "models" for the prefill benchmark: one attention operator at the paper's shapes
(16 heads, feature dim 16, value dim 64, bf16), with no embedding or MLP around it. Each catalog
``operator`` entry loads to an ``Operator`` that, for a (batch, N, repeats) point, draws its random
inputs once and returns the callable to time. Tested (CPU paths) in ``tests/test_throughput.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# op name -> implementation version. The version is part of the model's revision
# (``operator:<op>@v<version>``), so changing what an op computes or how it is timed re-runs cells.
OPERATOR_VERSIONS: dict[str, int] = {
    "sdpa_flash": 1,
    "based_triton": 1,
    "based_torch": 1,
    "prefix_triton": 1,
    "prefix_torch": 1,
}
TRITON_OPS = frozenset({"based_triton", "prefix_triton"})
PREFIX_OPS = frozenset({"prefix_triton", "prefix_torch"})
# The models' default linear-attention eps: small enough that the Triton path applies too.
LINEAR_ATTENTION_EPS = 1e-12


class OperatorUnavailable(RuntimeError):
    """The op cannot run on this device (a Triton kernel asked of a CPU worker)."""


class OperatorConfig(BaseModel):
    """An operator entry's ``config`` in the model catalog (inference/catalog/models.json)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    heads: int = Field(ge=1)
    featureDim: int = Field(ge=1)
    valueDim: int = Field(ge=1)
    # prefix ops only: encoder tokens as a fraction of the prompt length N (the paper: N/2)
    encoderFraction: float | None = Field(default=None, gt=0, le=1)


def operator_revision(op: str, version: int) -> str:
    """The only revision an operator has: the op and its implementation version."""
    return f"operator:{op}@v{version}"


@dataclass(frozen=True)
class Workload:
    """One point's callable and what it processes."""

    run: Callable[[], Any]
    processed_len: int  # tokens per sequence one run pushes through
    implementation: str
    inputs: tuple[torch.Tensor, ...] = ()  # what ``run`` reads (q, k, v[, k_enc, v_enc])


def random_qkv(
    batch: int,
    heads: int,
    length: int,
    feature_dim: int,
    value_dim: int,
    *,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random normal q, k [B, H, L, feature_dim] scaled by 1/feature_dim (the paper's profiling
    script, kept so the Taylor features stay in range) and v [B, H, L, value_dim] unscaled."""

    def draw(dim: int, scale: float) -> torch.Tensor:
        x = torch.randn(batch, heads, length, dim, generator=generator, device=device)
        return (x * scale).to(dtype)

    q, k = draw(feature_dim, 1 / feature_dim), draw(feature_dim, 1 / feature_dim)
    return q, k, draw(value_dim, 1.0)


def sdpa_causal(
    batch: int,
    length: int,
    heads: int,
    head_dim: int,
    *,
    generator: torch.Generator,
    device: torch.device,
) -> Workload:
    """Causal softmax attention over ``length`` tokens. On CUDA: bf16 with the flash backend
    forced (an error, not a silent fallback, if it cannot run); on CPU: float32, math backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    on_cuda = device.type == "cuda"
    dtype = torch.bfloat16 if on_cuda else torch.float32
    backend = SDPBackend.FLASH_ATTENTION if on_cuda else SDPBackend.MATH
    q, k, v = (
        torch.randn(batch, heads, length, head_dim, generator=generator, device=device).to(dtype)
        for _ in range(3)
    )

    def run() -> torch.Tensor:
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    return Workload(run, length, "sdpa-flash" if on_cuda else "sdpa-math-cpu", (q, k, v))


class Operator:
    """A loaded operator entry. Not a LanguageModel: it has no vocabulary and no decode step;
    only prefill_throughput runs it."""

    family = "operator"

    def __init__(self, op: str, config: dict[str, Any], device: str | torch.device) -> None:
        if op not in OPERATOR_VERSIONS:
            raise ValueError(f"unknown operator {op!r}; known: {sorted(OPERATOR_VERSIONS)}")
        try:
            self.config = OperatorConfig.model_validate(config)
        except ValidationError as error:
            raise ValueError(f"operator {op!r} config: {error}") from None
        if (op in PREFIX_OPS) != (self.config.encoderFraction is not None):
            raise ValueError(
                f"operator {op!r}: config.encoderFraction is required for prefix ops and only "
                f"for them, got {self.config.encoderFraction!r}"
            )
        self.op = op
        self.device = torch.device(device)
        if op in TRITON_OPS and self.device.type != "cuda":
            raise OperatorUnavailable(
                f"operator {op!r} is a Triton kernel and needs a CUDA device; this worker "
                f"computes on {self.device}"
            )

    @property
    def dtype(self) -> torch.dtype:
        """bf16 as in the paper; SDPA on a CPU worker runs float32 (its implementation says so)."""
        if self.op == "sdpa_flash" and self.device.type != "cuda":
            return torch.float32
        return torch.bfloat16

    def encoder_len(self, seq_len: int) -> int:
        fraction = self.config.encoderFraction or 0.0
        return max(1, int(fraction * seq_len)) if self.op in PREFIX_OPS else 0

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        """Linear attention: the fp32 Taylor state (1 + d + d^2 features x Dv, plus the
        normaliser) per head; SDPA: the KV cache after ``prompt_len`` tokens."""
        c = self.config
        if self.op == "sdpa_flash":
            itemsize = self.dtype.itemsize
            return batch_size * 2 * c.heads * prompt_len * c.valueDim * itemsize
        features = 1 + c.featureDim + c.featureDim**2
        return batch_size * c.heads * features * (c.valueDim + 1) * 4

    def workload(self, batch: int, seq_len: int, repeats: int, seed: int) -> Workload:
        """The callable for one point: causal over ``repeats * seq_len`` tokens, plus (prefix
        ops) an encoder region of ``encoderFraction * seq_len`` tokens. Inputs are drawn here,
        once, outside any timed region."""
        if batch < 1 or seq_len < 1 or repeats < 1:
            raise ValueError(f"batch, seq_len, repeats must be >= 1, got {batch, seq_len, repeats}")
        c = self.config
        generator = torch.Generator(device=self.device).manual_seed(seed)
        length = repeats * seq_len
        if self.op == "sdpa_flash":
            return sdpa_causal(
                batch, length, c.heads, c.valueDim, generator=generator, device=self.device
            )
        draw: dict[str, Any] = dict(generator=generator, device=self.device, dtype=self.dtype)
        q, k, v = random_qkv(batch, c.heads, length, c.featureDim, c.valueDim, **draw)
        suffix = "" if self.device.type == "cuda" else "-cpu"
        if self.op == "based_triton":
            from ..kernels.based_triton import based_causal_attention

            return Workload(
                lambda: based_causal_attention(q, k, v), length, "based-triton", (q, k, v)
            )
        if self.op == "based_torch":
            from ..ops.linear_attention import based_linear_attention_torch

            return Workload(
                lambda: based_linear_attention_torch(q, k, v, None, LINEAR_ATTENTION_EPS),
                length,
                # bf16 inputs, computed in float32 by the chunked PyTorch form
                f"based-torch-chunked-fp32{suffix}",
                (q, k, v),
            )
        m = self.encoder_len(seq_len)
        _, k_enc, v_enc = random_qkv(batch, c.heads, m, c.featureDim, c.valueDim, **draw)
        if self.op == "prefix_triton":
            from ..kernels.prefix_triton import prefix_linear_attention

            return Workload(
                lambda: prefix_linear_attention(q, k, v, k_enc, v_enc),
                length + m,
                "prefix-triton",
                (q, k, v, k_enc, v_enc),
            )
        from ..ops.prefix_linear_attention import prefix_linear_attention_torch

        enc_mask = torch.ones(batch, m, dtype=torch.bool, device=self.device)
        return Workload(
            lambda: prefix_linear_attention_torch(
                q, k, v, k_enc, v_enc, None, enc_mask, LINEAR_ATTENTION_EPS
            ),
            length + m,
            f"prefix-torch-chunked-fp32{suffix}",
            (q, k, v, k_enc, v_enc),
        )

    def kernel_versions(self) -> dict[str, str]:
        """What identifies the measured code beyond torch/triton: the op and its version."""
        return {"operator": operator_revision(self.op, OPERATOR_VERSIONS[self.op])}
