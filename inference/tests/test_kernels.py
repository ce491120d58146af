"""Tests for twice_inference.kernels: the slow references agree with a token-by-token recurrence,
and the Triton kernels (run on CPU by the Triton interpreter) agree with the references in float64.

The interpreter must be switched on before the kernel modules are imported (triton.jit reads
TRITON_INTERPRET when it decorates), so this module sets it first.
"""

from __future__ import annotations

import math
import os

os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import triton.language as tl  # noqa: E402
import triton.runtime.interpreter as interpreter  # noqa: E402

from twice_inference.kernels import reference  # noqa: E402
from twice_inference.kernels.based_triton import based_causal_attention, interpreting  # noqa: E402
from twice_inference.kernels.prefix_triton import prefix_linear_attention  # noqa: E402
from twice_inference.kernels.symmetric_triton import encoder_state  # noqa: E402


def _patch_triton_interpreter() -> None:
    """Two gaps in the Triton 3.6 interpreter, fixed for this test process only:
    - it turns a scalar loop bound into an int via int(array of shape (1,)), which numpy 2.4
      rejects;
    - its dot multiplies bfloat16 operands as their raw uint16 storage. Upcasting them to float32
      is exact and is what the tensor cores do (bf16 products, fp32 accumulation)."""
    original_patch = interpreter._patch_lang_tensor

    def patch_tensor(tensor, scope):  # type: ignore[no-untyped-def]
        original_patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    original_dot = interpreter.InterpreterBuilder.create_dot

    def dot(self, a, b, d, input_precision, max_num_imprecise_acc):  # type: ignore[no-untyped-def]
        def upcast(h):  # type: ignore[no-untyped-def]
            if h.dtype.scalar != tl.bfloat16:
                return h
            data = interpreter._convert_float(h.data, tl.bfloat16, tl.float32, None).view(
                np.float32
            )
            return interpreter.TensorHandle(data, tl.float32)

        return original_dot(self, upcast(a), upcast(b), d, input_precision, max_num_imprecise_acc)

    interpreter._patch_lang_tensor = patch_tensor
    interpreter.InterpreterBuilder.create_dot = dot


_patch_triton_interpreter()

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
    fq, fk = reference.taylor_features(q), reference.taylor_features(k)
    assert fq.shape == (5, 273)
    s = (q * k).sum(-1) / 4.0
    torch.testing.assert_close((fq * fk).sum(-1), 1 + s + s * s / 2, rtol=1e-12, atol=1e-12)


def test_quadratic_references_match_the_recurrence() -> None:
    q, k, v, k_enc, v_enc = _inputs(2, 2, 23, 9, seed=1)
    causal = reference.causal_linear_attention_reference(q, k, v)
    assert _rel_err(reference.recurrent_linear_attention_reference(q, k, v), causal) < 1e-12
    prefix = reference.prefix_linear_attention_reference(q, k, v, k_enc, v_enc)
    recurrent = reference.recurrent_linear_attention_reference(q, k, v, k_enc, v_enc)
    assert _rel_err(recurrent, prefix) < 1e-12
    assert _rel_err(prefix, causal) > 1e-3  # the encoder state really changes the output


def test_symmetric_features_give_the_same_kernel() -> None:
    q, k = torch.randn(7, 16, dtype=torch.float64), torch.randn(7, 16, dtype=torch.float64)
    fq = reference.symmetric_taylor_features(q, key_side=False)
    fk = reference.symmetric_taylor_features(k, key_side=True)
    assert fq.shape == (7, 160)
    full = (reference.taylor_features(q) * reference.taylor_features(k)).sum(-1)
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
    assert _rel_err(out, reference.causal_linear_attention_reference(q, k, v)) < 1e-2


def test_based_default_is_symmetric_and_matches_full() -> None:
    q, k, v, _, _ = _inputs(1, 1, 70, 0, seed=5)
    default = based_causal_attention(q, k, v, block_c=32)
    full = based_causal_attention(q, k, v, features="full", block_c=32)
    ref = reference.causal_linear_attention_reference(q, k, v)
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
    ref = reference.prefix_linear_attention_reference(q, k, v, k_enc, v_enc)
    assert _rel_err(out, ref) < 1e-2


def test_encoder_state_kernel_sums_every_segment() -> None:
    _, _, _, k_enc, v_enc = _inputs(1, 2, 0, 300, seed=11)
    s, zk, z1 = encoder_state(k_enc, v_enc, block_c=16)  # 3 segments
    fk = reference.symmetric_taylor_features(k_enc.double(), key_side=True).flatten(0, 1)
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
    fk = reference.symmetric_taylor_features(k_enc.double(), key_side=True).flatten(0, 1)
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
