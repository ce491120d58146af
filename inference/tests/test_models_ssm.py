"""Mamba, Mamba-2 and GLA adapters: fast vs slow scans, parallel vs recurrent forms, left-padding
independence, state sizes, checkpoint key mapping, the paper configs' sizes, and logits against
transformers (Mamba, Mamba-2) and flash-linear-attention (GLA) on the same random weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from twice_inference.models import checkpoint, gla, mamba, mamba2
from twice_inference.models.layers import rel_error
from twice_inference.ops.gla import gla_chunked, gla_naive
from twice_inference.ops.selective_scan import selective_scan_chunked, selective_scan_naive
from twice_inference.ops.ssd import ssd_chunked, ssd_naive

VOCAB = 64

TINY = {
    "mamba": (mamba, {"d_model": 32, "n_layer": 2, "vocab_size": VOCAB, "ssm_cfg": {"d_state": 8}}),
    "mamba2": (
        mamba2,
        {
            "d_model": 32,
            "n_layer": 2,
            "vocab_size": VOCAB,
            "ssm_cfg": {
                "layer": "Mamba2",
                "d_state": 8,
                "headdim": 8,
                "ngroups": 2,
                "chunk_size": 4,
            },
        },
    ),
    "gla": (gla, {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "vocab_size": VOCAB}),
}


def tiny_model(family: str, seed: int = 0) -> torch.nn.Module:
    module, config = TINY[family]
    torch.manual_seed(seed)
    model = module.build(config).eval()
    with torch.no_grad():  # move every parameter off its structured init (ones, aranges)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def set_fast(model: torch.nn.Module, fast: bool) -> None:
    for m in model.modules():
        if hasattr(m, "use_chunked_scan"):
            m.use_chunked_scan = fast
        if hasattr(m, "use_chunked"):
            m.use_chunked = fast


FAMILIES = list(TINY)


# ---------------------------------------------------------------------------------------------
# Scan kernels: chunked vs loop
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 4, 16])
def test_selective_scan_chunked_matches_naive(chunk: int) -> None:
    torch.manual_seed(1)
    b, t, d, n = 2, 13, 6, 4
    x, B, C = torch.randn(b, t, d), torch.randn(b, t, n), torch.randn(b, t, n)
    dt = F.softplus(torch.randn(b, t, d)) * 3  # large steps: strong decay inside a chunk
    A = -torch.rand(d, n) * 4
    h0 = torch.randn(b, d, n)
    y_ref, h_ref = selective_scan_naive(x, dt, A, B, C, h0)
    y, h = selective_scan_chunked(x, dt, A, B, C, h0, chunk=chunk)
    assert rel_error(y, y_ref) < 1e-5 and rel_error(h, h_ref) < 1e-5


@pytest.mark.parametrize("chunk", [1, 5, 32])
def test_ssd_chunked_matches_naive(chunk: int) -> None:
    torch.manual_seed(2)
    b, t, hds, p, n = 2, 13, 3, 4, 5
    x, B, C = torch.randn(b, t, hds, p), torch.randn(b, t, hds, n), torch.randn(b, t, hds, n)
    dt = F.softplus(torch.randn(b, t, hds)) * 3
    A = -torch.rand(hds) * 4
    h0 = torch.randn(b, hds, p, n)
    y_ref, h_ref = ssd_naive(x, dt, A, B, C, h0)
    y, h = ssd_chunked(x, dt, A, B, C, h0, chunk=chunk)
    assert rel_error(y, y_ref) < 1e-5 and rel_error(h, h_ref) < 1e-5


@pytest.mark.parametrize("chunk", [1, 4, 32])
def test_gla_chunked_matches_naive_and_fla_naive(chunk: int) -> None:
    from fla.ops.gla.naive import naive_recurrent_gla

    torch.manual_seed(3)
    b, t, hds, k, v = 2, 13, 2, 4, 6
    q, kk, vv = torch.randn(b, t, hds, k), torch.randn(b, t, hds, k), torch.randn(b, t, hds, v)
    g = F.logsigmoid(torch.randn(b, t, hds, k) * 3)
    S0 = torch.randn(b, hds, k, v)
    o_ref, S_ref = gla_naive(q, kk, vv, g, S0)
    o, S = gla_chunked(q, kk, vv, g, S0, chunk=chunk)
    assert rel_error(o, o_ref) < 1e-5 and rel_error(S, S_ref) < 1e-5
    o_fla, S_fla = naive_recurrent_gla(q, kk, vv, g, S0, output_final_state=True)
    assert rel_error(o_ref, o_fla) < 1e-5 and rel_error(S_ref, S_fla) < 1e-5


# ---------------------------------------------------------------------------------------------
# Model level: fast vs slow, parallel vs recurrent, padding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_and_slow_forward_agree(family: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        fast = model(ids)
        set_fast(model, False)
        slow = model(ids)
    assert fast.shape == (2, 11, model.vocab_size)
    assert rel_error(fast, slow) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_parallel_and_recurrent_logits_agree(family: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(0, VOCAB, (2, 12))
    with torch.no_grad():
        full = model(ids)
        logits, state = model.prefill(ids[:, :5], torch.ones(2, 5))
        assert rel_error(logits, full[:, 4]) < 1e-4
        for t in range(5, 12):
            logits, state = model.step(ids[:, t], state)
            assert rel_error(logits, full[:, t]) < 1e-4, f"step {t}"


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padding_does_not_change_a_prompts_outputs(family: str) -> None:
    model = tiny_model(family)
    prompt = torch.randint(1, VOCAB, (1, 6))
    others = torch.randint(1, VOCAB, (2, 10))
    batch = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), prompt], 1), others])
    mask = torch.ones_like(batch)
    mask[0, :4] = 0
    batch[0, :4] = torch.randint(1, VOCAB, (4,))  # pad ids must not matter either
    nxt = torch.randint(0, VOCAB, (3, 3))
    with torch.no_grad():
        alone_full = model(prompt)
        alone, alone_state = model.prefill(prompt, torch.ones_like(prompt))
        padded_full = model(batch, mask)
        padded, padded_state = model.prefill(batch, mask)
        assert rel_error(padded_full[0, 4:], alone_full[0]) < 1e-5
        assert rel_error(padded[0], alone[0]) < 1e-5
        for t in range(3):
            alone, alone_state = model.step(nxt[:1, t], alone_state)
            padded, padded_state = model.step(nxt[:, t], padded_state)
            assert rel_error(padded[0], alone[0]) < 1e-5, f"step {t}"


@pytest.mark.parametrize("family", FAMILIES)
def test_right_padding_is_rejected(family: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(0, VOCAB, (1, 4))
    with pytest.raises(ValueError, match="left-padded"):
        model(ids, torch.tensor([[1, 1, 1, 0]]))


@pytest.mark.parametrize("family", FAMILIES)
def test_state_size_bytes_is_the_prefill_states_size(family: str) -> None:
    model = tiny_model(family)
    with torch.no_grad():
        for batch, length in [(1, 3), (3, 9)]:
            ids = torch.randint(0, VOCAB, (batch, length))
            _, state = model.prefill(ids, torch.ones_like(ids))
            assert state.nbytes() == model.state_size_bytes(batch, length)
            assert model.state_size_bytes(batch, 0) == model.state_size_bytes(batch, 10_000)
    assert model.family == family


def _ssm_elements_per_layer_spec(cfg: dict, d_state: int) -> int:
    """The paper's state-size count (docs/protocol.md, Models): n_layer x (2 d_model) x d_state, per layer."""
    return 2 * cfg["d_model"] * d_state


@pytest.mark.parametrize("name", list(mamba.PAPER_CONFIGS))
def test_mamba_state_formula_matches_spec(name: str) -> None:
    raw = mamba.PAPER_CONFIGS[name]
    cfg = mamba.MambaConfig.model_validate(raw)
    ssm_part = cfg.n_layer * cfg.d_inner * cfg.ssm_cfg.d_state * 4
    assert ssm_part == raw["n_layer"] * _ssm_elements_per_layer_spec(raw, 16) * 4
    conv_part = cfg.n_layer * cfg.d_inner * (cfg.ssm_cfg.d_conv - 1) * 2
    assert cfg.n_layer * mamba.mamba_state_bytes_per_layer(cfg, 2) == ssm_part + conv_part


@pytest.mark.parametrize("name", list(mamba2.PAPER_CONFIGS))
def test_mamba2_state_formula_matches_spec(name: str) -> None:
    raw = mamba2.PAPER_CONFIGS[name]
    cfg = mamba2.Mamba2Config.model_validate(raw)
    ssm_part = cfg.n_layer * cfg.nheads * cfg.ssm_cfg.headdim * cfg.ssm_cfg.d_state * 4
    assert ssm_part == raw["n_layer"] * _ssm_elements_per_layer_spec(raw, 128) * 4
    conv_part = cfg.n_layer * (cfg.d_inner + 2 * 128) * 3 * 2
    assert cfg.n_layer * mamba2.mamba2_state_bytes_per_layer(cfg, 2) == ssm_part + conv_part


# ---------------------------------------------------------------------------------------------
# Against the maintained implementations, same random weights, float32
# ---------------------------------------------------------------------------------------------


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_mamba_matches_transformers() -> None:
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(4)
    hf_cfg = MambaConfig(
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        vocab_size=VOCAB,
        expand=2,
        conv_kernel=4,
        time_step_rank=4,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
    )
    hf = _perturbed(MambaForCausalLM(hf_cfg))
    ours = mamba.build(
        {"d_model": 32, "n_layer": 2, "vocab_size": VOCAB, "ssm_cfg": {"d_state": 8, "dt_rank": 4}}
    ).eval()
    ours.load_state_dict(checkpoint.convert_mamba(hf.state_dict()), strict=True)
    ids = torch.randint(0, VOCAB, (2, 11))
    with torch.no_grad():
        assert rel_error(ours(ids), hf(ids).logits) < 1e-5


@pytest.mark.parametrize("ngroups", [1, 2])
def test_mamba2_matches_transformers(ngroups: int) -> None:
    """Unpadded batches only: transformers zeroes pad inputs but still decays the state there,
    so its left-padded outputs legitimately differ from ours (ours keeps the state fixed)."""
    import inspect

    from transformers import Mamba2Config, Mamba2ForCausalLM
    from transformers.models.mamba2 import modeling_mamba2

    if (
        ngroups > 1
        and "group_size" not in inspect.signature(modeling_mamba2.MambaRMSNormGated).parameters
    ):
        # Older transformers (5.17 measured) normalise the gated output over the whole inner
        # width instead of per group as mamba-ssm does, so only ngroups = 1 (the paper's Mamba-2
        # checkpoints) can agree with it; ours then matches it to 2e-7.
        pytest.skip("this transformers' Mamba-2 gated RMSNorm ignores n_groups")
    torch.manual_seed(5)
    hf_cfg = Mamba2Config(
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        vocab_size=VOCAB,
        expand=2,
        head_dim=8,
        num_heads=8,
        n_groups=ngroups,
        conv_kernel=4,
        chunk_size=4,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
    )
    hf = _perturbed(Mamba2ForCausalLM(hf_cfg))
    _, tiny = TINY["mamba2"]
    ours = mamba2.build({**tiny, "ssm_cfg": {**tiny["ssm_cfg"], "ngroups": ngroups}}).eval()
    ours.load_state_dict(checkpoint.convert_mamba(hf.state_dict()), strict=True)
    ids = torch.randint(0, VOCAB, (2, 11))  # not a multiple of chunk_size
    with torch.no_grad():
        assert rel_error(ours(ids), hf(ids).logits) < 1e-5


def test_gla_matches_fla_model_with_reference_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """fla's GLAForCausalLM on CPU: its Triton pieces (GLA kernels, RMSNorm, swish, swiglu) are
    swapped for fla's own naive op and plain torch equivalents; everything else is fla's code."""
    import fla.layers.gla as fla_gla
    import fla.modules.mlp as fla_mlp
    from fla.models import GLAConfig, GLAForCausalLM
    from fla.ops.gla.naive import naive_recurrent_gla

    def naive(q, k, v, gk=None, g=None, initial_state=None, output_final_state=False, **_):
        return naive_recurrent_gla(
            q, k, v, gk if gk is not None else g, initial_state, output_final_state
        )

    def torch_rmsnorm(hidden_size, elementwise_affine, eps, dtype=None):
        return torch.nn.RMSNorm(hidden_size, eps=eps, elementwise_affine=elementwise_affine)

    monkeypatch.setattr(fla_gla, "fused_recurrent_gla", naive)
    monkeypatch.setattr(fla_gla, "chunk_gla", naive)
    monkeypatch.setattr(fla_gla, "RMSNorm", torch_rmsnorm)
    monkeypatch.setattr(fla_mlp, "swiglu", lambda x, y: F.silu(x) * y)
    torch.manual_seed(6)
    ref = GLAForCausalLM(
        GLAConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_heads=2,
            vocab_size=VOCAB,
            fuse_norm=False,
            fuse_swiglu=False,
            fuse_cross_entropy=False,
        )
    )
    for layer in ref.model.layers:
        layer.attn.gate_fn = F.silu
    ref = _perturbed(ref)
    _, tiny = TINY["gla"]
    ours = gla.build(tiny).eval()
    ours.load_state_dict(checkpoint.convert_gla(ref.state_dict()), strict=True)  # g_norm renamed
    ids = torch.randint(0, VOCAB, (2, 45))  # > 32: several chunks of ours
    with torch.no_grad():
        assert rel_error(ours(ids), ref(ids).logits) < 1e-5


# ---------------------------------------------------------------------------------------------
# Configs and checkpoint keys
# ---------------------------------------------------------------------------------------------

NOMINAL_PARAMS = {
    "state-spaces/mamba-130m": 130e6,
    "state-spaces/mamba-370m": 370e6,
    "state-spaces/mamba-1.4b": 1.4e9,
    "state-spaces/mamba-2.8b": 2.8e9,
    "hazyresearch/mamba-1b": 1.3e9,
    "hazyresearch/mamba-1b-50b": 1.3e9,
    "hazyresearch/mamba-360M-30B": 360e6,
    "state-spaces/mamba2-130m": 130e6,
    "state-spaces/mamba2-370m": 370e6,
    "state-spaces/mamba2-1.3b": 1.3e9,
    "state-spaces/mamba2-2.7b": 2.7e9,
    "fla-hub/gla-1.3B-100B": 1.3e9,
    "fla-hub/gla-2.7B-100B": 2.7e9,
}
PAPER = [
    (module, name, cfg)
    for module in (mamba, mamba2, gla)
    for name, cfg in module.PAPER_CONFIGS.items()
]


def test_every_paper_checkpoint_has_a_config() -> None:
    assert sorted(name for _, name, _ in PAPER) == sorted(NOMINAL_PARAMS)


@pytest.mark.parametrize("module,name,config", PAPER, ids=[name for _, name, _ in PAPER])
def test_paper_config_parameter_count(module, name: str, config: dict) -> None:
    with torch.device("meta"):
        model = module.build(config)
    count = sum(p.numel() for p in model.parameters())  # tied weights counted once
    assert abs(count / NOMINAL_PARAMS[name] - 1) < 0.10, f"{name}: {count / 1e6:.1f}M"


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_config_key_is_rejected_by_name(family: str) -> None:
    module, config = TINY[family]
    with pytest.raises(ValidationError, match="not_a_field"):
        module.build({**config, "not_a_field": 1})


def test_unsupported_options_are_rejected() -> None:
    _, tiny = TINY["gla"]
    with pytest.raises(ValidationError, match="use_short_conv"):
        gla.build({**tiny, "use_short_conv": True})
    with pytest.raises(ValidationError, match="attn_layer_idx"):
        mamba.build({**TINY["mamba"][1], "attn_layer_idx": [3]})
    with pytest.raises(ValidationError, match="layer"):
        mamba2.build({**TINY["mamba2"][1], "ssm_cfg": {"layer": "Mamba1"}})


def test_mamba_vocab_is_padded_like_mamba_ssm() -> None:
    with torch.device("meta"):
        model = mamba.build(mamba.PAPER_CONFIGS["state-spaces/mamba-130m"])
    assert model.vocab_size == 50280
    assert model.lm_head.weight is model.backbone.embedding.weight


def test_mamba_checkpoint_keys_are_mamba_ssm_names() -> None:
    model = tiny_model("mamba")
    keys = set(model.state_dict())
    for name in [
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "x_proj.weight",
        "dt_proj.weight",
        "dt_proj.bias",
        "A_log",
        "D",
        "out_proj.weight",
    ]:
        assert f"backbone.layers.1.mixer.{name}" in keys
    assert {"backbone.embedding.weight", "backbone.norm_f.weight", "lm_head.weight"} <= keys
    # A file without the tied head (as mamba_ssm saves it) still loads strictly.
    saved = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    tiny_model("mamba", seed=9).load_state_dict(checkpoint.convert_mamba(saved), strict=True)


def test_gla_converts_the_older_fused_mlp_layout() -> None:
    model = tiny_model("gla")
    sd = model.state_dict()
    older = {k: v for k, v in sd.items() if ".mlp.up_proj." not in k}
    for i in range(2):
        p = f"model.layers.{i}.mlp."
        stacked = [sd[p + "gate_proj.weight"], sd[p + "up_proj.weight"]]
        older[p + "gate_proj.weight"] = torch.cat(stacked)
    converted = checkpoint.convert_gla(older)
    assert converted.keys() == sd.keys()
    assert all(torch.equal(converted[k], sd[k]) for k in sd)


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_weights_run_both_forms_close_to_float32(family: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        ref = model(ids)
        model = model.to(torch.bfloat16)
        full = model(ids)
        _, state = model.prefill(ids[:, :6], torch.ones(2, 6))
        last, _ = model.step(ids[:, 6], state)
    assert full.dtype == torch.bfloat16
    assert rel_error(full.float(), ref) < 0.05
    assert rel_error(last.float(), full[:, 6].float()) < 0.05


def test_mamba_with_layernorm_runs_both_forms() -> None:
    torch.manual_seed(7)
    model = mamba.build({**TINY["mamba"][1], "rms_norm": False}).eval()
    assert "backbone.norm_f.bias" in model.state_dict()
    ids = torch.randint(0, VOCAB, (1, 6))
    with torch.no_grad():
        full = model(ids)
        _, state = model.prefill(ids[:, :5], torch.ones(1, 5))
        last, _ = model.step(ids[:, 5], state)
    assert rel_error(last, full[:, 5]) < 1e-4
