"""The Taylor linear-attention dispatch in ops.linear_attention and ops.prefix_linear_attention:
which inputs take the Triton kernels, and that the kernel path agrees with the PyTorch path
(function and tiny-model level, bf16). The kernels run on CPU under the Triton interpreter, which
tests marked ``triton_interpreter`` run under (conftest.py).
"""

from __future__ import annotations

import pytest
import torch
from tiny_configs import KERNEL_HYBRID, VOCAB

from twice_inference.kernels import based_triton, prefix_triton
from twice_inference.models import based, jrt_rnn, layers
from twice_inference.models.layers import rel_error
from twice_inference.ops import (
    kernel_mode,
    linear_attention,
    prefix_linear_attention,
    window_attention,
)
from twice_inference.ops.linear_attention.naive import (
    based_linear_attention_naive,
    linear_attention_state_naive,
)
from twice_inference.ops.prefix_linear_attention import chunk as prefix_chunk
from twice_inference.ops.prefix_linear_attention.naive import prefix_linear_attention_naive

pytestmark = pytest.mark.triton_interpreter

# bf16 products inside the kernels: measured 5.0e-3 (Based) and 8.6e-3 to 9.6e-3 (prefix) against
# the float32 path at these q/k (std 0.5); the model benchmark's bf16 bar.
BF16_TOL = 2e-2
EPS = 1e-12


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts calls into the two kernels (the real ones still run)."""
    calls = {"based": 0, "prefix": 0}
    real_based, real_prefix = (
        based_triton.based_causal_attention,
        prefix_triton.prefix_linear_attention,
    )

    def counted_based(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["based"] += 1
        return real_based(*args, **kwargs)

    def counted_prefix(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["prefix"] += 1
        return real_prefix(*args, **kwargs)

    monkeypatch.setattr(based_triton, "based_causal_attention", counted_based)
    monkeypatch.setattr(prefix_triton, "prefix_linear_attention", counted_prefix)
    return calls


def _inputs(t: int, dv: int = 32, d: int = 16, dtype: torch.dtype = torch.bfloat16):
    g = torch.Generator().manual_seed(t)
    q, k, k_enc = (torch.randn(2, 2, t, d, generator=g).mul(0.5).to(dtype) for _ in range(3))
    v, v_enc = (torch.randn(2, 2, t, dv, generator=g).to(dtype) for _ in range(2))
    return q, k, v, k_enc, v_enc


def _pad_mask(t: int, pad: int) -> torch.Tensor:
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, :pad] = False
    return mask


def test_kernel_applies_only_where_it_computes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k, v, _, _ = _inputs(8)
    ones = torch.ones(2, 8, dtype=torch.bool)
    applies = kernel_mode.taylor_kernel_applies
    with kernel_mode.use_taylor_kernel_mode("auto"):
        assert not applies((q, k, v), None, EPS)  # CPU tensors: only the interpreter mode
    with kernel_mode.use_taylor_kernel_mode("off"):
        assert not applies((q, k, v), None, EPS)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        assert applies((q, k, v), None, EPS) and applies((q, k, v), ones, EPS)
        assert not applies((q, k, v), _pad_mask(8, 3), EPS)  # padding: the kernel has no mask
        assert not applies((q.float(), k.float(), v.float()), None, EPS)
        assert not applies((q.half(), k.half(), v.half()), None, EPS)
        assert not applies(_inputs(8, d=4)[:3], None, EPS)  # feature dim 4
        assert not applies(_inputs(8, dv=48)[:3], None, EPS)  # 48 % 32 value block
        assert not applies((q, k, v), None, 1e-3)  # an eps the kernel would not honour
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            applies((q, k, v), None, EPS)
    monkeypatch.setenv(kernel_mode.KERNEL_MODE_ENV, "fast")
    with pytest.raises(ValueError, match="TWICE_TAYLOR_KERNEL"):
        kernel_mode.taylor_kernel_mode()
    with pytest.raises(ValueError, match="kernel mode"):
        kernel_mode.use_taylor_kernel_mode("on").__enter__()


def test_based_kernel_path_matches_the_pytorch_path(kernel_calls: dict[str, int]) -> None:
    q, k, v, _, _ = _inputs(70)  # a full 64-token chunk and a ragged tail
    expected = based_linear_attention_naive(q, k, v, None, EPS)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        out = linear_attention.based_linear_attention(
            q, k, v, torch.ones(2, 70, dtype=torch.bool), EPS
        )
    assert kernel_calls["based"] == 1 and out.dtype == torch.bfloat16  # the kernel's, unwidened
    assert rel_error(out, expected) < BF16_TOL


@pytest.mark.parametrize("encoder_length", [24, 100])  # M inside the sequence, and M > T
def test_prefix_kernel_path_matches_the_pytorch_path(
    encoder_length: int, kernel_calls: dict[str, int]
) -> None:
    q, k, v, k_enc, v_enc = _inputs(70)
    mask = torch.ones(2, 70, dtype=torch.bool)
    enc_mask = prefix_linear_attention.encoder_mask(mask, encoder_length)
    args = (q, k, v, k_enc, v_enc, mask, enc_mask, EPS)
    expected = prefix_linear_attention_naive(q, k, v, k_enc, v_enc, mask, enc_mask, EPS)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        out = prefix_linear_attention.prefix_linear_attention(*args)
    assert kernel_calls["prefix"] == 1 and out.dtype == torch.bfloat16
    assert rel_error(out, expected) < BF16_TOL
    no_encoder = based_linear_attention_naive(q, k, v, None, EPS)
    assert rel_error(out, no_encoder) > 10 * BF16_TOL  # the encoder region really is folded in


def test_padding_falls_back_to_the_pytorch_path(kernel_calls: dict[str, int]) -> None:
    q, k, v, k_enc, v_enc = _inputs(40)
    mask = _pad_mask(40, 5)
    enc_mask = prefix_linear_attention.encoder_mask(mask, 16)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        out_based = linear_attention.based_linear_attention(q, k, v, mask, EPS)
        out_prefix = prefix_linear_attention.prefix_linear_attention(
            q, k, v, k_enc, v_enc, mask, enc_mask, EPS
        )
    assert kernel_calls == {"based": 0, "prefix": 0}
    assert torch.equal(out_based, linear_attention.based_linear_attention_torch(q, k, v, mask, EPS))
    torch_prefix = prefix_linear_attention.prefix_linear_attention_torch(
        q, k, v, k_enc, v_enc, mask, enc_mask, EPS
    )
    assert torch.equal(out_prefix, torch_prefix)


def test_an_encoder_region_the_kernel_cannot_express_falls_back(
    kernel_calls: dict[str, int],
) -> None:
    q, k, v, k_enc, v_enc = _inputs(40)
    enc_mask = torch.zeros(2, 40, dtype=torch.bool)
    enc_mask[0, :10], enc_mask[1, :12] = True, True  # rows disagree on M
    assert prefix_chunk.encoder_prefix_length(enc_mask) is None
    assert prefix_chunk.encoder_prefix_length(torch.zeros(2, 40, dtype=torch.bool)) is None
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        prefix_linear_attention.prefix_linear_attention(q, k, v, k_enc, v_enc, None, enc_mask, EPS)
    assert kernel_calls["prefix"] == 0


def _tiny_bf16(family: str) -> torch.nn.Module:
    if family == "based":
        model = based.build(KERNEL_HYBRID)
    else:
        model = jrt_rnn.build({**KERNEL_HYBRID, "encoder_length": 24})
    return model.init_random(seed=1, std=0.2).to(torch.bfloat16).eval()


@pytest.mark.parametrize("family", ["based", "jrt_rnn"])
def test_tiny_model_kernel_path_matches_pytorch_path(
    family: str, kernel_calls: dict[str, int]
) -> None:
    """Whole bf16 models: unpadded prompts take the kernel, padded ones the PyTorch path; logits
    and the decode that follows agree either way. The bar is the model benchmark's bf16 rule: 2e-2 or
    twice the bf16-vs-float32 gap of these weights (measured ~1.3e-2 to 1.9e-2; the kernel path
    differs from the PyTorch path by ~0.9e-2 to 1.3e-2)."""
    model = _tiny_bf16(family)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB, (2, 40), generator=g)
    ones = torch.ones_like(ids)
    nxt = torch.randint(1, VOCAB, (2,), generator=g)
    with torch.no_grad():
        with kernel_mode.use_taylor_kernel_mode("off"):
            want_logits, state = model.prefill(ids, ones)
            want_step, _ = model.step(nxt, state)
            want_padded = model(ids, _pad_mask(40, 6).long())
        with kernel_mode.use_taylor_kernel_mode("interpreter"):
            logits, state = model.prefill(ids, ones)
            step, _ = model.step(nxt, state)
            assert kernel_calls[{"based": "based", "jrt_rnn": "prefix"}[family]] == 1
            padded = model(ids, _pad_mask(40, 6).long())
        exact, _ = _tiny_bf16(family).float().prefill(ids, ones)
        exact_padded = _tiny_bf16(family).float()(ids, _pad_mask(40, 6).long())
    tolerance = max(2e-2, 2 * rel_error(want_logits.float(), exact))
    assert sum(kernel_calls.values()) == 1  # the padded forward stayed on PyTorch
    # The padded forward's linear attention stayed on PyTorch, but in "interpreter" mode its
    # BaseConv layers take the fused short-conv kernel (ops.short_conv), which rounds to bf16 once
    # where the PyTorch form rounds after each op: the same bf16 rule, on the padded input's gap.
    padded_tolerance = max(2e-2, 2 * rel_error(want_padded.float(), exact_padded))
    assert rel_error(padded.float(), want_padded.float()) < padded_tolerance
    assert rel_error(logits.float(), want_logits.float()) < tolerance
    assert rel_error(step.float(), want_step.float()) < tolerance


@pytest.mark.parametrize(("t", "dv"), [(2, 32), (70, 32), (600, 64)])
def test_decode_state_kernel_matches_float64(t: int, dv: int) -> None:
    """The segment-state kernel's decode state (``kernels.taylor_decode_state``, several segments
    at t = 600) in the feature map's layout, against one float64 sum: bf16 products, so the
    bf16 bar; the kernel is what an unpadded prompt takes, the PyTorch form what a padded one."""
    q, k, v, _, _ = _inputs(t, dv)
    mask = _pad_mask(t, min(5, t - 1))
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        state = linear_attention.linear_attention_state(k, v, None)
        padded = linear_attention.linear_attention_state(k, v, mask)
    want = linear_attention_state_naive(k, v, None)
    want_padded = linear_attention_state_naive(k, v, mask)
    assert state.s.dtype == torch.float32 and state.s.shape == want.s.shape
    assert rel_error(state.s.double(), want.s) < BF16_TOL
    assert rel_error(state.z.double(), want.z) < BF16_TOL
    # The padded prompt's state came from the float32 form: far closer than bf16.
    assert rel_error(padded.s.double(), want_padded.s) < 1e-5
    assert rel_error(padded.z.double(), want_padded.z) < 1e-5


def test_decode_state_kernel_takes_one_run_of_kept_columns() -> None:
    """JRT-RNN's encoder mask keeps the same leading M columns of every row: the kernel sums
    those alone. A region that differs between rows is left to the PyTorch form."""
    _, k, v, _, _ = _inputs(48)
    lead = torch.zeros(2, 48, dtype=torch.bool)
    lead[:, :20] = True
    ragged = lead.clone()
    ragged[1, 19] = False
    assert linear_attention.kept_span(lead, 48) == (0, 20)
    assert linear_attention.kept_span(ragged, 48) is None
    assert linear_attention.kept_span(None, 48) == (0, 48)
    assert linear_attention.kept_span(torch.ones(2, 48, dtype=torch.bool), 48) == (0, 48)
    assert linear_attention.kept_span(torch.zeros(2, 48, dtype=torch.bool), 48) is None
    gap = lead.clone()
    gap[:, 10] = False
    assert linear_attention.kept_span(gap, 48) is None
    tail = torch.zeros(2, 48, dtype=torch.bool)
    tail[:, 30:] = True
    assert linear_attention.kept_span(tail, 48) == (30, 48)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        state = linear_attention.linear_attention_state(k, v, lead)
    want = linear_attention_state_naive(k, v, lead)
    assert rel_error(state.s.double(), want.s) < BF16_TOL
    assert rel_error(state.z.double(), want.z) < BF16_TOL


@pytest.mark.parametrize(("t", "window", "d"), [(40, 1, 16), (40, 3, 32), (70, 8, 16), (9, 30, 16)])
def test_flash_window_matches_float64(t: int, window: int, d: int) -> None:
    """fla's kernel with our window: query i over keys i-w..i. fla counts its window in keys
    (i-W+1..i), so a W off by one would drop or add a key in every row: at w <= 8 that moves the
    output far past the bf16 bar."""
    g = torch.Generator().manual_seed(t + window)
    q, k, v = (torch.randn(2, 2, t, d, generator=g).to(torch.bfloat16) for _ in range(3))
    mask = torch.ones(2, t, dtype=torch.bool)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        assert window_attention.flash_window_applies(q, k, v)
        out = layers.masked_causal_attention(q, k, v, mask, window)
        shifted = window_attention.flash_window_attention(q, k, v, window + 1)
    want = layers.masked_causal_attention_dense(q.double(), k.double(), v.double(), mask, window)
    assert out.shape == want.shape and bool(torch.isfinite(out).all())
    assert rel_error(out.double(), want) < BF16_TOL
    if t > window + 1:  # a wider window changes rows past it
        assert rel_error(shifted.double(), want) > 3 * BF16_TOL


def test_flash_window_takes_only_what_it_computes_the_same() -> None:
    """16-bit dtypes, one head dim in fla's tile for q, k and v, no CPU outside the interpreter
    mode; padded prompts never reach it (the dense reference keeps them)."""
    q = torch.randn(1, 2, 8, 32).to(torch.bfloat16)
    applies = window_attention.flash_window_applies
    with kernel_mode.use_taylor_kernel_mode("auto"):
        assert not applies(q, q, q)  # CPU tensors
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        assert applies(q, q, q)
        assert applies(q.half(), q.half(), q.half())
        assert not applies(q.float(), q.float(), q.float())
        assert not applies(q[..., :8], q[..., :8], q[..., :8])
        wide = torch.randn(1, 2, 8, 512).to(torch.bfloat16)
        assert not applies(wide, wide, wide)
        assert not applies(q, q, torch.randn(1, 2, 8, 16).to(torch.bfloat16))
        assert not applies(q[:, :, :0], q[:, :, :0], q[:, :, :0])
        mask = torch.ones(1, 8, dtype=torch.bool)
        mask[0, :3] = False
        padded = layers.masked_causal_attention(q, q, q, mask, 2)
    want = layers.masked_causal_attention_dense(q, q, q, mask, 2)
    assert torch.equal(padded, want)
