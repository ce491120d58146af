"""Greedy generation is the same batched as one prompt at a time, for every model family.

Each family is built small with seeded random weights (the debug models of the catalog, which
cover transformer, based, mamba2 and jrt_rnn, plus tiny mamba and gla configs), then prompts of
different lengths are generated three ways: batched with left padding, one at a time through the
same engine, and by the naive reference that re-reads the whole sequence for every token.
JRT-RNN runs in both of its decoding modes.
"""

from __future__ import annotations

import pytest
import torch

from twice_inference.engine.generate import greedy_generate
from twice_inference.engine.naive import naive_greedy_generate
from twice_inference.models.registry import load_catalog, random_weights_model

CATALOG = {entry.name: entry for entry in load_catalog().models}

CONFIGS = {
    name: (CATALOG[name].family, CATALOG[name].config)
    for name in ("debug-attn-bytes", "debug-based-bytes", "debug-mamba2-bytes", "debug-jrt-bytes")
}
CONFIGS["tiny-mamba"] = (
    "mamba",
    {
        "d_model": 32,
        "n_layer": 2,
        "vocab_size": 257,
        "ssm_cfg": {"d_state": 8},
        "tie_embeddings": True,
    },
)
CONFIGS["tiny-gla"] = (
    "gla",
    {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "vocab_size": 257},
)


def spread_weights(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Small-init tied models just echo their last input token, which would make any two ways of
    generating agree; matrices drawn at unit gain make every family's output depend on the whole
    prompt."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=gen) / param.shape[1] ** 0.5)
    return model


CASES = [(name, None) for name in sorted(CONFIGS) if CONFIGS[name][0] != "jrt_rnn"] + [
    (name, mode)
    for name in sorted(CONFIGS)
    if CONFIGS[name][0] == "jrt_rnn"
    for mode in ("left_pad", "iterate")
]


@pytest.mark.parametrize(("name", "jrt_mode"), CASES)
def test_batched_generation_equals_one_at_a_time(name: str, jrt_mode: str | None) -> None:
    family, config = CONFIGS[name]
    model = spread_weights(random_weights_model(family, config, seed=3), seed=5).eval()
    if jrt_mode is not None:
        model.set_inference_mode(jrt_mode)
    gen = torch.Generator().manual_seed(11)
    # lengths straddle the JRT encoder region so both of its regimes are batched together
    lengths = [5, 17, 40, 300] if family == "jrt_rnn" else [5, 17, 40, 9]
    prompts = [torch.randint(1, 250, (n,), generator=gen).tolist() for n in lengths]
    settings = dict(max_new_tokens=6, stop_id=None, pad_id=256)

    batched = greedy_generate(model, prompts, batch_size=4, **settings).generations
    alone = [greedy_generate(model, [p], batch_size=1, **settings).generations[0] for p in prompts]
    reference = naive_greedy_generate(model, prompts, max_new_tokens=6, stop_id=None)

    tokens = [g.tokens for g in batched]
    assert tokens == [g.tokens for g in alone]
    if jrt_mode == "left_pad":
        # the naive reference re-reads everything, which for JRT-RNN is the "iterate" mode: a
        # prompt shorter than the encoder region then sees its own continuation non-causally
        long_prompts = [i for i, p in enumerate(prompts) if len(p) >= config["encoder_length"]]
        assert [tokens[i] for i in long_prompts] == [reference[i] for i in long_prompts]
    else:
        assert tokens == reference
    # the check means something only if generations differ from a copy of the last prompt token
    assert any(len(set(t)) > 1 for t in tokens), tokens
