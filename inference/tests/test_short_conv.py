"""ops.short_conv: the fused gated short-conv kernel under the Triton interpreter against the
PyTorch form, with left padding, strided halves of one projection, bias or none, a gate or none,
tiles cut at both edges; its dispatch; and a whole Based model's logits unchanged by it."""

from __future__ import annotations

import pytest
import torch
from tiny_configs import HYBRID, VOCAB

from twice_inference.models import based
from twice_inference.models.layers import rel_error
from twice_inference.ops import kernel_mode
from twice_inference.ops.short_conv import gated_short_conv, gated_short_conv_torch

pytestmark = pytest.mark.triton_interpreter

TOL = 1e-6  # float32 in both; the kernel sums the taps in another order


def _inputs(b: int, t: int, c: int, k: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    projected = torch.randn(b, t, 2 * c, generator=g)
    x, gate = projected.split(c, dim=-1)  # strided views, as BaseConv's in_proj leaves them
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, : t // 3] = False  # a left-padded row
    weight = torch.randn(c, 1, k, generator=g)
    bias = torch.randn(c, generator=g)
    return x, mask, weight, bias, gate


@pytest.mark.parametrize(
    "b,t,c,k,with_bias,with_gate",
    # tiles cut in time (T not a multiple of 32) and channels (C not a multiple of 128)
    [(2, 45, 130, 3, True, True), (3, 7, 16, 4, False, True), (2, 33, 64, 3, True, False)],
)
def test_kernel_matches_the_pytorch_form(b, t, c, k, with_bias, with_gate) -> None:
    x, mask, weight, bias, gate = _inputs(b, t, c, k, seed=t + c)
    bias = bias if with_bias else None
    gate = gate if with_gate else None
    want = gated_short_conv_torch(x, mask, weight, bias, gate)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        got = gated_short_conv(x, mask, weight, bias, gate)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel_error(got, want) < TOL
    # a left-padded row equals the same prompt alone
    pad = t // 3
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        alone = gated_short_conv(
            x[:1, pad:], mask[:1, pad:], weight, bias, None if gate is None else gate[:1, pad:]
        )
    assert rel_error(got[:1, pad:], alone) < TOL


def test_kernel_reads_bf16_and_rounds_once() -> None:
    x, mask, weight, bias, gate = _inputs(2, 40, 64, 3, seed=3)
    xb, gb, wb, bb = (u.to(torch.bfloat16) for u in (x, gate, weight, bias))
    exact = gated_short_conv_torch(xb.float(), mask, wb.float(), bb.float(), gb.float())
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        got = gated_short_conv(xb, mask, wb, bb, gb)
    assert got.dtype == torch.bfloat16
    assert rel_error(got.float(), exact) < 2**-8  # one bf16 rounding of the float32 result


def test_dispatch_stays_on_pytorch_off_the_gpu_and_for_training() -> None:
    x, mask, weight, bias, gate = _inputs(1, 5, 8, 3, seed=1)
    want = gated_short_conv_torch(x, mask, weight, bias, gate)
    with kernel_mode.use_taylor_kernel_mode("auto"):
        assert torch.equal(gated_short_conv(x, mask, weight, bias, gate), want)
    weight.requires_grad_(True)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        y = gated_short_conv(x, mask, weight, bias, gate)
    assert y.grad_fn is not None  # the PyTorch form, which autograd can train through


def test_based_model_logits_unchanged_by_the_kernel() -> None:
    model = based.build(HYBRID).init_random(seed=2).eval()
    ids = torch.randint(1, VOCAB, (2, 11), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    with torch.no_grad():
        with kernel_mode.use_taylor_kernel_mode("off"):
            want = model(ids, mask)
        with kernel_mode.use_taylor_kernel_mode("interpreter"):
            got = model(ids, mask)
    assert rel_error(got, want) < 1e-5
