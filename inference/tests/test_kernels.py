"""Tests for twice_inference.kernels: the ops' float64 references agree with a token-by-token
recurrence, and the Triton kernels, run on CPU by the Triton interpreter (the module is marked
``triton_interpreter``: conftest.py runs it in a process of its own), agree with them.
"""

from __future__ import annotations

import math

import pytest
import torch

from twice_inference.kernels.based_triton import based_causal_attention, interpreting
from twice_inference.kernels.prefix_triton import prefix_linear_attention
from twice_inference.kernels.symmetric_triton import encoder_state
from twice_inference.kernels.taylor_state import (
    carried_states,
    choose_segments,
    segment_length,
    segment_states,
)
from twice_inference.ops.feature_map import symmetric_taylor_features, taylor_feature_map
from twice_inference.ops.linear_attention.naive import based_linear_attention_naive
from twice_inference.ops.prefix_linear_attention.naive import prefix_linear_attention_naive

pytestmark = pytest.mark.triton_interpreter

D_FEATURE, D_VALUE = 16, 64


def _inputs(b: int, h: int, n: int, m: int, seed: int) -> tuple[torch.Tensor, ...]:
    """bf16 inputs like the paper's benchmark (normal draws; q/k scaled down), never zeros."""
    g = torch.Generator().manual_seed(seed)

    def draw(length: int, dim: int, scale: float) -> torch.Tensor:
        return (torch.randn(b, h, length, dim, generator=g) * scale).to(torch.bfloat16)

    qk_scale = 1.0 / math.sqrt(D_FEATURE)
    return (
        draw(n, D_FEATURE, qk_scale),
        draw(n, D_FEATURE, qk_scale),
        draw(n, D_VALUE, 1.0),
        draw(m, D_FEATURE, qk_scale),
        draw(m, D_VALUE, 1.0),
    )


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def _poisoned(like: torch.Tensor) -> torch.Tensor:
    return torch.full_like(like, float("nan"))


def test_interpreter_is_on() -> None:
    assert interpreting()


def test_taylor_features_give_the_second_order_kernel() -> None:
    q, k = torch.randn(5, 16, dtype=torch.float64), torch.randn(5, 16, dtype=torch.float64)
    fq, fk = taylor_feature_map(q), taylor_feature_map(k)
    assert fq.shape == (5, 273)
    s = (q * k).sum(-1) / 4.0
    torch.testing.assert_close((fq * fk).sum(-1), 1 + s + s * s / 2, rtol=1e-12, atol=1e-12)


def _recurrence(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None = None,
    v_enc: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token-by-token s_i = s_{i-1} + phi(k_i)^T v_i, z_i = z_{i-1} + phi(k_i) in float64, started
    from the encoder state when given: an independent check of the quadratic references."""
    fq, fk = taylor_feature_map(q.double()), taylor_feature_map(k.double())
    vd = v.double()
    state = torch.zeros(*q.shape[:2], fq.shape[-1], v.shape[-1], dtype=torch.float64)
    norm = torch.zeros(*q.shape[:2], fq.shape[-1], dtype=torch.float64)
    if k_enc is not None and v_enc is not None:
        fke = taylor_feature_map(k_enc.double())
        state = state + torch.einsum("bhmf,bhmv->bhfv", fke, v_enc.double())
        norm = norm + fke.sum(-2)
    out = []
    for i in range(q.shape[-2]):
        state = state + fk[:, :, i, :, None] * vd[:, :, i, None, :]
        norm = norm + fk[:, :, i]
        num = torch.einsum("bhf,bhfv->bhv", fq[:, :, i], state)
        den = (fq[:, :, i] * norm).sum(-1, keepdim=True)
        out.append(num / den)
    return torch.stack(out, dim=2)


def test_quadratic_references_match_the_recurrence() -> None:
    q, k, v, k_enc, v_enc = _inputs(2, 2, 23, 9, seed=1)
    causal = based_linear_attention_naive(q, k, v)
    assert _rel_err(_recurrence(q, k, v), causal) < 1e-12
    prefix = prefix_linear_attention_naive(q, k, v, k_enc, v_enc)
    assert _rel_err(_recurrence(q, k, v, k_enc, v_enc), prefix) < 1e-12
    assert _rel_err(prefix, causal) > 1e-3  # the encoder state really changes the output


def test_symmetric_features_give_the_same_kernel() -> None:
    q, k = torch.randn(7, 16, dtype=torch.float64), torch.randn(7, 16, dtype=torch.float64)
    fq = symmetric_taylor_features(q, key_side=False)
    fk = symmetric_taylor_features(k, key_side=True)
    assert fq.shape == (7, 160)
    full = (taylor_feature_map(q) * taylor_feature_map(k)).sum(-1)
    torch.testing.assert_close((fq * fk).sum(-1), full, rtol=1e-12, atol=1e-12)


BASED_CASES = [(150, 32, 32), (64, 64, 64), (17, 16, 64), (100, 64, 16)]  # ragged, exact, tiny


@pytest.mark.parametrize("features", ["symmetric", "full"])
@pytest.mark.parametrize(("n", "block_c", "block_dv"), BASED_CASES)
def test_based_kernel_matches_reference(features: str, n: int, block_c: int, block_dv: int) -> None:
    q, k, v, _, _ = _inputs(1, 2, n, 0, seed=n)
    out = based_causal_attention(
        q, k, v, features=features, block_c=block_c, block_dv=block_dv, out=_poisoned(v)
    )
    assert torch.isfinite(out.float()).all(), "some outputs were never written"
    assert _rel_err(out, based_linear_attention_naive(q, k, v)) < 1e-2


def test_based_default_is_symmetric_and_matches_full() -> None:
    q, k, v, _, _ = _inputs(1, 1, 70, 0, seed=5)
    default = based_causal_attention(q, k, v, block_c=32)
    full = based_causal_attention(q, k, v, features="full", block_c=32)
    ref = based_linear_attention_naive(q, k, v)
    assert _rel_err(default, ref) < 1e-2 and _rel_err(full, ref) < 1e-2


# (n, m, block_c): ragged decoder and encoder; encoder longer than decoder; m = 300 with
# block_c 16 splits the encoder into 3 segments (last one ragged) summed into one state.
PREFIX_CASES = [(150, 70, 32), (40, 100, 32), (33, 64, 32), (20, 300, 16)]


@pytest.mark.parametrize("features", ["symmetric", "full"])
@pytest.mark.parametrize(("n", "m", "block_c"), PREFIX_CASES)
def test_prefix_kernel_matches_reference(features: str, n: int, m: int, block_c: int) -> None:
    q, k, v, k_enc, v_enc = _inputs(1, 2, n, m, seed=n + m)
    out = prefix_linear_attention(
        q, k, v, k_enc, v_enc, features=features, block_c=block_c, block_dv=32, out=_poisoned(v)
    )
    assert torch.isfinite(out.float()).all(), "some outputs were never written"
    ref = prefix_linear_attention_naive(q, k, v, k_enc, v_enc)
    assert _rel_err(out, ref) < 1e-2


# Sequence-parallel "full" kernel: (n, m, block_c, segments); ragged last segments, a segment
# count the length rounds down (100 tokens in 4 x 32 -> 4 segments of 32, the last ragged), and
# encoders shorter and longer than one segment.
SPLIT_CASES = [(150, 0, 16, 3), (100, 0, 32, 4), (150, 70, 16, 3), (40, 100, 16, 2)]


@pytest.mark.parametrize(("n", "m", "block_c", "segments"), SPLIT_CASES)
def test_sequence_parallel_kernel_matches_reference(
    n: int, m: int, block_c: int, segments: int
) -> None:
    q, k, v, k_enc, v_enc = _inputs(1, 2, n, m, seed=7 * n + m)
    kw = dict(features="full", block_c=block_c, block_dv=32, segments=segments)
    if m:
        out = prefix_linear_attention(q, k, v, k_enc, v_enc, out=_poisoned(v), **kw)
        ref = prefix_linear_attention_naive(q, k, v, k_enc, v_enc)
    else:
        out = based_causal_attention(q, k, v, out=_poisoned(v), **kw)
        ref = based_linear_attention_naive(q, k, v)
    assert torch.isfinite(out.float()).all(), "some outputs were never written"
    assert _rel_err(out, ref) < 1e-2


def test_carried_states_are_the_recurrent_state_at_each_segment_start() -> None:
    """The state each segment starts from is the recurrence's state after the tokens before it:
    sum phi(k)^T v by order (k scaled by 16^(-1/4)), sum k k^T and sum k, plus the encoder's."""
    _, k, v, k_enc, v_enc = _inputs(1, 2, 90, 40, seed=13)
    segment = segment_length(90, 3, 16)  # 32: segments start at 0, 32, 64
    kw = dict(block_c=16, block_dv=32, num_warps=4)
    enc, enc_den = segment_states(k_enc, v_enc, 40, 1, **kw)
    start, start_den = carried_states(
        *segment_states(k, v, segment, 2, **kw), (enc[:, 0], enc_den[:, 0])
    )
    assert start.shape == (2, 3, 273, D_VALUE) and start_den.shape == (2, 3, 272)
    ks = torch.cat([k_enc, k], dim=2).double().flatten(0, 1) * 16**-0.25
    vs = torch.cat([v_enc, v], dim=2).double().flatten(0, 1)
    for s in range(3):
        t = 40 + s * segment  # encoder tokens + decoder tokens before segment s
        kt, vt = ks[:, :t], vs[:, :t]
        quad = torch.einsum("bti,btj,btv->bijv", kt, kt, vt).flatten(1, 2)
        want = torch.cat([quad, kt.transpose(1, 2) @ vt, vt.sum(1, keepdim=True)], dim=1)
        want_den = torch.cat([(kt.transpose(1, 2) @ kt).flatten(1), kt.sum(1)], dim=1)
        assert _rel_err(start[:, s], want) < 1e-2, s
        assert _rel_err(start_den[:, s], want_den) < 1e-2, s


def test_segment_count_follows_the_programs_the_gpu_can_hold() -> None:
    sms = 132
    # the paper's headline (B 16, H 16, 2 value slices): already more programs than fit at once
    assert choose_segments(512, 32768, 64, sms) == 1
    # B 2 at N 16384: 64 programs leave most SMs idle; a few segments each fill them
    split = choose_segments(64, 16384, 64, sms)
    assert 2 <= split <= 16
    assert choose_segments(64, 300, 64, sms) == 1  # too few chunks to cut
    assert segment_length(100, 4, 32) == 32 and segment_length(10, 4, 16) == 16


def test_encoder_state_kernel_sums_every_segment() -> None:
    _, _, _, k_enc, v_enc = _inputs(1, 2, 0, 300, seed=11)
    s, zk, z1 = encoder_state(k_enc, v_enc, block_c=16)  # 3 segments
    fk = symmetric_taylor_features(k_enc.double(), key_side=True).flatten(0, 1)
    want_s = fk.transpose(-1, -2) @ v_enc.double().flatten(0, 1)
    ks = k_enc.double().flatten(0, 1) / 2.0
    assert s.shape == (2, 160, D_VALUE)
    assert _rel_err(s, want_s) < 1e-2  # bf16 features, fp32 sums
    assert _rel_err(zk, ks.transpose(-1, -2) @ ks) < 1e-2
    assert _rel_err(z1, ks.sum(-2)) < 1e-2


def test_encoder_state_covers_every_value_column_when_dv_is_not_a_multiple_of_64() -> None:
    _, _, _, k_enc, v_enc = _inputs(1, 1, 0, 40, seed=12)
    v96 = torch.cat([v_enc, v_enc[..., :32]], dim=-1).contiguous()  # Dv = 96
    s, _, _ = encoder_state(k_enc, v96, block_c=16)
    fk = symmetric_taylor_features(k_enc.double(), key_side=True).flatten(0, 1)
    assert _rel_err(s, fk.transpose(-1, -2) @ v96.double().flatten(0, 1)) < 1e-2


def test_kernels_reject_bad_inputs() -> None:
    q, k, v, k_enc, v_enc = _inputs(1, 1, 8, 8, seed=3)
    with pytest.raises(ValueError, match="q must be bfloat16"):
        based_causal_attention(q.float(), k, v)
    with pytest.raises(ValueError, match="k last dim must be 16"):
        based_causal_attention(q, v, v)
    with pytest.raises(ValueError, match="block_dv=48"):
        based_causal_attention(q, k, v, block_dv=48)
    with pytest.raises(ValueError, match="k_enc length"):
        prefix_linear_attention(q, k, v, k_enc, v_enc[:, :, :4])
    with pytest.raises(ValueError, match="features must be one of"):
        based_causal_attention(q, k, v, features="diagonal")
    with pytest.raises(ValueError, match="unknown config keys"):
        based_causal_attention(q, k, v, block_k=32)
    with pytest.raises(ValueError, match="unknown config keys"):
        based_causal_attention(q, k, v, features="symmetric", segments=2)
    with pytest.raises(ValueError, match="segments must be >= 0"):
        based_causal_attention(q, k, v, features="full", segments=-1)
