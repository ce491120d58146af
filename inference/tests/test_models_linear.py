"""Transformer++, Based and JRT-RNN adapters at tiny size, float32 on CPU: parallel forward vs
prefill + step, fast linear attention vs the ops' float64 references, left-padding invariance, JRT-RNN
inference modes, config validation and state sizes."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from tiny_configs import HYBRID, VOCAB

from twice_inference.models import based, jrt_rnn, transformer
from twice_inference.models.layers import rel_error
from twice_inference.ops.feature_map import taylor_feature_dim, taylor_feature_map
from twice_inference.ops.linear_attention import (
    based_linear_attention,
    linear_attention_state,
)
from twice_inference.ops.linear_attention.naive import (
    based_linear_attention_naive,
    linear_attention_state_naive,
)
from twice_inference.ops.prefix_linear_attention import encoder_mask, prefix_linear_attention
from twice_inference.ops.prefix_linear_attention.naive import prefix_linear_attention_naive
from twice_inference.protocols import LanguageModel

TOL = 1e-4

CONFIGS = {
    "transformer": (
        transformer.build,
        dict(
            vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, mlp_hidden=48, rotary_fraction=0.5
        ),
    ),
    "based": (based.build, HYBRID),
    "jrt_rnn": (jrt_rnn.build, {**HYBRID, "encoder_length": 7}),
}


def make(family: str, **overrides) -> torch.nn.Module:
    builder, config = CONFIGS[family]
    return builder({**config, **overrides}).init_random(seed=1, std=0.2).eval()


def left_pad(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


def test_taylor_feature_map_approximates_exp_kernel() -> None:
    assert taylor_feature_dim(16) == 273
    q, k = torch.randn(5, 16), torch.randn(5, 16)
    phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)
    assert phi_q.shape == (5, 273)
    dot = (q * k).sum(-1)
    expected = 1 + dot / math.sqrt(16) + dot**2 / (2 * 16)
    assert rel_error((phi_q * phi_k).sum(-1), expected) < 1e-5


@pytest.mark.parametrize("family", list(CONFIGS))
def test_models_satisfy_protocol(family: str) -> None:
    model = make(family)
    assert isinstance(model, LanguageModel)
    assert model.family == family and model.vocab_size == VOCAB


@pytest.mark.parametrize("family", list(CONFIGS))
def test_parallel_forward_matches_prefill_and_step(family: str) -> None:
    torch.manual_seed(0)
    model = make(family)
    ids = torch.randint(1, VOCAB, (2, 16))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # row 0 is left-padded; it still has M = 7 real tokens by prompt_len
    prompt_len = 9  # >= encoder_length for JRT, so forward and prefill see the same encoder region
    with torch.no_grad():
        full = model(ids, mask)
        logits, state = model.prefill(ids[:, :prompt_len], mask[:, :prompt_len])
        errors = [rel_error(logits, full[:, prompt_len - 1])]
        for t in range(prompt_len, ids.shape[1]):
            logits, state = model.step(ids[:, t], state)
            errors.append(rel_error(logits, full[:, t]))
    assert max(errors) < TOL, errors


@pytest.mark.parametrize("family", list(CONFIGS))
def test_left_padding_does_not_change_a_prompt(family: str) -> None:
    torch.manual_seed(1)
    model = make(family)
    prompts = [torch.randint(1, VOCAB, (n,)).tolist() for n in (4, 9, 12)]
    continuation = torch.randint(1, VOCAB, (3, 3))
    ids, mask = left_pad(prompts)
    with torch.no_grad():
        batch_forward = model(ids, mask)
        batch_logits, batch_state = model.prefill(ids, mask)
        batch_steps = []
        for t in range(continuation.shape[1]):
            step_logits, batch_state = model.step(continuation[:, t], batch_state)
            batch_steps.append(step_logits)
        for row, prompt in enumerate(prompts):
            alone = torch.tensor([prompt])
            alone_mask = torch.ones_like(alone)
            n = len(prompt)
            assert rel_error(batch_forward[row, -n:], model(alone, alone_mask)[0]) < 1e-5
            logits, state = model.prefill(alone, alone_mask)
            assert rel_error(batch_logits[row], logits[0]) < 1e-5
            for t in range(continuation.shape[1]):
                logits, state = model.step(continuation[row, t : t + 1], state)
                assert rel_error(batch_steps[t][row], logits[0]) < 1e-5


def test_pads_leave_every_state_untouched() -> None:
    model = make("based")
    prompt = torch.randint(1, VOCAB, (1, 6))
    padded = torch.cat([torch.full((1, 5), 7), prompt], dim=1)
    padded_mask = torch.cat(
        [torch.zeros(1, 5, dtype=torch.long), torch.ones(1, 6, dtype=torch.long)], 1
    )
    with torch.no_grad():
        _, alone = model.prefill(prompt, torch.ones_like(prompt))
        _, with_pads = model.prefill(padded, padded_mask)
    conv, la, swa = alone.layers[0], alone.layers[1], alone.layers[2]
    assert torch.allclose(with_pads.layers[0], conv, atol=1e-6)
    assert torch.allclose(with_pads.layers[1].s, la.s, rtol=1e-5, atol=1e-6)
    assert torch.allclose(with_pads.layers[1].z, la.z, rtol=1e-5, atol=1e-6)
    assert torch.equal(with_pads.layers[2].valid, swa.valid)  # pads never enter the ring buffer


def _random_attention_inputs(t: int, enc: bool = False):
    torch.manual_seed(2)
    b, h, d, dv = 2, 3, 4, 5
    q, k, v = torch.randn(b, h, t, d), torch.randn(b, h, t, d), torch.randn(b, h, t, dv)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, :11] = False
    if not enc:
        return q, k, v, mask
    return q, k, v, torch.randn(b, h, t, d), torch.randn(b, h, t, dv), mask


def test_linear_attention_fast_path_matches_loop() -> None:
    q, k, v, mask = _random_attention_inputs(t=150)  # not a multiple of the 64-token chunk
    fast = based_linear_attention(q, k, v, mask, eps=1e-12)
    slow = based_linear_attention_naive(q, k, v, mask, eps=1e-12)
    assert rel_error(fast[1, :, 11:], slow[1, :, 11:]) < TOL
    assert rel_error(fast[0], slow[0]) < TOL


def test_prefix_linear_attention_fast_path_matches_loop() -> None:
    q, k, v, k_enc, v_enc, mask = _random_attention_inputs(t=150, enc=True)
    enc_mask = encoder_mask(mask, encoder_length=40)
    assert enc_mask.sum(dim=1).tolist() == [40, 40]  # each row's own first 40 real tokens
    fast = prefix_linear_attention(q, k, v, k_enc, v_enc, mask, enc_mask, eps=1e-12)
    slow = prefix_linear_attention_naive(q, k, v, k_enc, v_enc, mask, enc_mask, eps=1e-12)
    assert rel_error(fast[1, :, 11:], slow[1, :, 11:]) < TOL
    assert rel_error(fast[0], slow[0]) < TOL


@pytest.mark.parametrize("chunk", [7, 64, 512])  # several slices, one ragged; one slice
@pytest.mark.parametrize("mask_kind", ["none", "all_real", "left_padded", "encoder", "all_pad"])
def test_prefill_state_sums_in_slices_match_one_shot(chunk: int, mask_kind: str) -> None:
    """The memory-lean decode state (phi(k) built a slice at a time, pad columns skipped) equals
    the one-shot sums, pads and positions past the JRT encoder region left out incl. z."""
    _, k, v, mask = _random_attention_inputs(t=150)
    masks = {
        "none": None,
        "all_real": torch.ones_like(mask),
        "left_padded": mask,
        "encoder": encoder_mask(mask, encoder_length=40),
        "all_pad": torch.zeros_like(mask),
    }
    key_mask = masks[mask_kind]
    lean = linear_attention_state(k, v, key_mask, chunk=chunk)
    one_shot = linear_attention_state_naive(k, v, key_mask)
    if mask_kind == "all_pad":
        assert not lean.s.any() and not lean.z.any()
        return
    assert rel_error(lean.s, one_shot.s) < 1e-5
    assert rel_error(lean.z, one_shot.z) < 1e-5
    if key_mask is not None:  # pads are really out: same sums as the real tokens alone
        kept = key_mask[1]
        alone = linear_attention_state_naive(k[1:, :, kept], v[1:, :, kept], key_mask[1:, kept])
        assert rel_error(lean.s[1:], alone.s) < 1e-5
        assert rel_error(lean.z[1:], alone.z) < 1e-5


def test_jrt_prefill_left_pads_short_prompts_to_the_encoder_length() -> None:
    model = make("jrt_rnn", encoder_length=12)
    prompt = torch.randint(1, VOCAB, (1, 5))
    with torch.no_grad():
        logits, state = model.prefill(prompt, torch.ones_like(prompt))
        # Masked left pads change nothing: the whole prompt is the encoder region either way.
        full = model(prompt, torch.ones_like(prompt))
    assert rel_error(logits, full[:, -1]) < TOL
    assert state.positions.tolist() == [5]


def test_jrt_iterate_mode_re_encodes_every_token() -> None:
    torch.manual_seed(3)
    model = make("jrt_rnn", encoder_length=12)
    prompt = torch.randint(1, VOCAB, (1, 5))
    generated = torch.randint(1, VOCAB, (4,))
    ones = torch.ones_like(prompt)
    with torch.no_grad():
        _, left_pad_state = model.prefill(prompt, ones)
        model.set_inference_mode("iterate")
        _, state = model.prefill(prompt, ones)
        sequence = prompt
        for token in generated:
            logits, state = model.step(token[None], state)
            left_pad_logits, left_pad_state = model.set_inference_mode("left_pad").step(
                token[None], left_pad_state
            )
            model.set_inference_mode("iterate")
            sequence = torch.cat([sequence, token.view(1, 1)], dim=1)
            # Iterate = a fresh non-causal encoding of everything so far (all within M here).
            expected = model(sequence, torch.ones_like(sequence))[:, -1]
            assert rel_error(logits, expected) < TOL
        # ...which is a different function from decoding recurrently after one encoding.
        assert rel_error(left_pad_logits, logits) > 1e-3
    with pytest.raises(ValueError, match="inference_mode"):
        model.set_inference_mode("read2x")


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="n_head"):
        transformer.build({**CONFIGS["transformer"][1], "n_head": 4})
    with pytest.raises(ValidationError, match="linear_attn_layers"):
        based.build({**HYBRID, "linear_attn_layers": [9]})
    with pytest.raises(ValidationError, match="encoder_length"):
        jrt_rnn.build({**HYBRID, "encoder_length": 0})


def test_state_sizes() -> None:
    attn = make("transformer")
    per_token = 2 * 2 * 32 * 4  # K and V, 2 layers, d_model 32, float32
    assert attn.state_size_bytes(1, 10) == 10 * per_token
    assert attn.state_size_bytes(3, 10) == 3 * 10 * per_token

    hybrid = make("based")
    la = 2 * taylor_feature_dim(4) * (16 + 1) * 4  # heads x F x (Dv + 1), float32
    swa = 2 * 3 * 32 * 4  # K and V ring buffer of `window` past keys
    conv = 2 * 64 * 2 * 4  # two BaseConv layers, 2*32 channels, kernel - 1 = 2 taps
    assert hybrid.state_size_bytes(1, 5) == hybrid.state_size_bytes(1, 5000) == la + swa + conv
    prompt = torch.randint(1, VOCAB, (1, 8))
    with torch.no_grad():
        _, state = hybrid.prefill(prompt, torch.ones_like(prompt))
    ring_mask_bytes = 3  # the bool validity mask rides along and is not counted
    assert state.nbytes() == la + swa + conv + ring_mask_bytes


def test_bfloat16_runs_close_to_float32() -> None:
    model = make("jrt_rnn")
    ids = torch.randint(1, VOCAB, (1, 10))
    with torch.no_grad():
        reference = model(ids)
        low = model.to(torch.bfloat16)(ids)
        _, state = model.prefill(ids, torch.ones_like(ids))
        step_logits, _ = model.step(ids[:, -1], state)
    assert low.dtype == torch.float32 and torch.isfinite(step_logits).all()
    assert rel_error(low, reference) < 0.1
