"""The seeded initialiser every random-weight model uses: the zoo trainer before training, and the
catalog's "debug" models, whose revision ("random:seed=N") promises the weights it draws. Drawn
from a private generator, so the weights depend on neither the device nor the global RNG state.
Tested in ``tests/test_train.py`` and ``tests/test_registry.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def initialize(model: nn.Module, family: str, seed: int, decoder_std: float | None = 0.02) -> None:
    """Seeded initial weights. The decoder families use their ``init_random`` with
    ``decoder_std``: None is its fan-in scheme, which the zoo trains from
    (``train.build_zoo_model``; with GPT-2's 0.02 the attention-style zoo models learned no
    recall). The default stays 0.02 because the catalog's random-weight debug models
    (``registry.random_weights_model``) promise by their revision ("random:seed=N") the weights
    this function drew for them at 0.02.
    The SSM families use torch's defaults plus mamba_ssm's choices that matter for recall: a small
    embedding and dt biases whose softplus is log-uniform in [1e-3, 1e-1] (a zero bias would
    make every state forget within a few tokens)."""
    init_random = getattr(model, "init_random", None)
    if init_random is not None:
        init_random(seed, std=decoder_std)
        return
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log") or name.endswith(".D"):
                continue  # the adapters' S4D-style inits
            if name.endswith("dt_proj.bias") or name.endswith("dt_bias"):
                dt = torch.exp(
                    torch.rand(p.shape, generator=gen) * (math.log(0.1) - math.log(1e-3))
                    + math.log(1e-3)
                )
                p.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            elif name.endswith("embedding.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            elif p.dim() == 1:
                p.fill_(1.0) if "norm" in name else p.zero_()
            else:
                fan_in = p[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
