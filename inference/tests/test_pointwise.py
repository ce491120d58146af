"""ops.pointwise: the fused rotary and SwiGLU kernels under the Triton interpreter against the
PyTorch forms and the float64 rotary formula, with odd rotary dims, q and k as strided views of
one qkv projection, left padding, one-token decode steps; their dispatch; and a Transformer++'s
prefill and decode unchanged by them."""

from __future__ import annotations

import pytest
import torch
from test_rotary import flash_rotary_float64
from tiny_configs import VOCAB

from twice_inference.models import transformer
from twice_inference.models.layers import Rotary, positions_from_mask, rel_error
from twice_inference.ops import kernel_mode
from twice_inference.ops.pointwise import (
    swiglu,
    swiglu_torch,
    without_pointwise_kernels,
)

pytestmark = pytest.mark.triton_interpreter


def _stacked_qk(b: int, h: int, t: int, dh: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """q and k as Attention passes them: [2, B, H, T, Dh] views into one [B, T, 3, H, Dh]."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, t, 3, h, dh, generator=g).to(dtype)
    return qkv.permute(2, 0, 3, 1, 4)[:2]


def _as_interpreter_rounds(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float32 -> dtype as Triton 3.6's interpreter casts: numpy's float16 rounds to nearest, but
    its bfloat16 cast drops the low 16 bits (toward zero). A GPU rounds to nearest in both, which
    ``bench.pointwise_check`` checks against the PyTorch form there."""
    if dtype != torch.bfloat16:
        return x.to(dtype)
    return (x.view(torch.int32) & ~0xFFFF).view(torch.float32).to(dtype)


def _float32_form(rotary: Rotary, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    return _as_interpreter_rounds(rotary(x.float(), positions), x.dtype)


def _interpreted(fn, *args):  # type: ignore[no-untyped-def]
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        return fn(*args)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("head_dim,dim", [(64, 64), (70, 35), (64, 32), (16, 7), (10, 9)])
def test_rotary_kernel_matches_the_pytorch_form(dtype, head_dim: int, dim: int) -> None:
    rotary = Rotary(dim)
    qk = _stacked_qk(2, 3, 37, head_dim, dtype, seed=head_dim + dim)  # 37: a cut time tile
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[1, :12] = False  # a left-padded row
    positions = positions_from_mask(mask)
    want = rotary(qk, positions)  # auto on the CPU: the PyTorch form
    got = _interpreted(rotary, qk, positions)
    assert got.dtype == dtype and got.shape == want.shape and got.is_contiguous()
    # The same float32 arithmetic: the same bits once rounded the interpreter's way.
    assert torch.equal(got, _float32_form(rotary, qk, positions))
    assert rel_error(got.float(), want.float()) < 2**-7  # within a rounding of the PyTorch form
    # a single tensor (no stack) and the padded row's real tokens as that prompt alone
    assert torch.equal(_interpreted(rotary, qk[1], positions), got[1])
    alone = _interpreted(rotary, qk[:, 1:, :, 12:], positions[1:, 12:])
    assert torch.equal(alone[:, 0], got[:, 1, :, 12:])


@pytest.mark.parametrize("head_dim,dim", [(70, 35), (16, 10)])
def test_rotary_kernel_against_float64(head_dim: int, dim: int) -> None:
    x = _stacked_qk(1, 2, 40, head_dim, torch.bfloat16, seed=dim)[0]
    positions = torch.arange(40)[None] * 37  # large angles: a wrong frequency shows at once
    got = _interpreted(Rotary(dim), x, positions)
    expected = flash_rotary_float64(x.float(), positions, dim, 10000.0)
    assert (got.double() - expected).abs().max() < 0.05  # bf16 output rounding of |x| < ~5


def test_rotary_kernel_decode_steps() -> None:
    """One token a row at each row's own position, as ``Attention.step`` calls it."""
    rotary = Rotary(35)
    qk = _stacked_qk(3, 2, 1, 70, torch.bfloat16, seed=5)
    positions = torch.tensor([[0], [17], [8191]])
    assert torch.equal(_interpreted(rotary, qk, positions), _float32_form(rotary, qk, positions))


def test_rotary_dispatch_keeps_pytorch_for_float32_training_and_the_switch() -> None:
    rotary = Rotary(32)
    qk = _stacked_qk(1, 2, 9, 64, torch.float32, seed=2)
    positions = torch.arange(9)[None]
    want = rotary(qk, positions)
    assert torch.equal(_interpreted(rotary, qk, positions), want)  # float32: PyTorch form
    leaf = qk.detach().to(torch.bfloat16).requires_grad_(True)
    assert _interpreted(rotary, leaf, positions).grad_fn is not None  # autograd's form
    with without_pointwise_kernels():
        assert torch.equal(
            _interpreted(rotary, qk.to(torch.bfloat16), positions),
            rotary(qk.to(torch.bfloat16), positions),
        )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_swiglu_kernel_rounds_once(dtype) -> None:
    g = torch.Generator().manual_seed(3)
    projected = torch.randn(2, 19, 2 * 300, generator=g).to(dtype)  # a cut channel tile
    value, gate = projected.chunk(2, dim=-1)  # strided halves, as SwiGLU's fc1 leaves them
    got = _interpreted(swiglu, value, gate)
    exact = swiglu_torch(value.float(), gate.float())
    assert got.dtype == dtype and got.shape == value.shape
    assert rel_error(got.float(), exact) < 2**-8  # one 16-bit rounding of the float32 result
    # the PyTorch form rounds twice: within two roundings of the kernel
    assert rel_error(got.float(), swiglu_torch(value, gate).float()) < 2**-7
    assert torch.equal(_interpreted(swiglu, value.float(), gate.float()), exact)  # float32


def test_transformer_prefill_and_decode_unchanged_by_the_kernels() -> None:
    config = dict(vocab_size=VOCAB, d_model=64, n_layers=2, n_heads=2, rotary_fraction=0.5)
    model = transformer.build(config).init_random(seed=4).to(torch.bfloat16).eval()
    ids = torch.randint(1, VOCAB, (2, 13), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    nxt = torch.tensor([3, 7])

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            logits, state = model.prefill(ids, mask)
            step_logits, _ = model.step(nxt, state)
        return logits.float(), step_logits.float()

    with kernel_mode.use_taylor_kernel_mode("off"):
        want = run()
    got = _interpreted(run)
    for g, w in zip(got, want, strict=True):
        assert rel_error(g, w) < 0.03  # bf16 activations; the MLP rounds once instead of twice
