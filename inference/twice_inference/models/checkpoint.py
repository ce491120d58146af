"""Checkpoint key conversion: each family's published state-dict names onto this package's
module names, one function per layout, so a family module never imports another one's loader.
A strict load afterwards (``registry.load_weights``) reports anything left unmatched. Tested in
``tests/test_models_ssm.py`` and ``tests/test_registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

StateDict = dict[str, torch.Tensor]

# flash-attn GPTLMHeadModel (hazyresearch/{attn,based,JRT}-*): names inferred from the public
# training code.
_HAZY_RENAMES = (
    ("embeddings.word_embeddings.weight", "embeddings.weight"),
    ("ln_f.weight", "final_norm.weight"),
    (".mixer.conv1.conv.", ".mixer.conv."),  # older BaseConv naming
    (".mixer.conv.conv.", ".mixer.conv."),
)
_HAZY_DROPPED_SUFFIXES = ("inv_freq", "_cos_cached", "_sin_cached", "tril_indices")


def convert_hazy(state_dict: StateDict) -> StateDict:
    """The flash-attn GPT layout shared by the Transformer++, Based and JRT-RNN checkpoints (JRT
    adds proj_k_enc, proj_v_enc, which need no renaming)."""
    converted: StateDict = {}
    for key, tensor in state_dict.items():
        if key.endswith(_HAZY_DROPPED_SUFFIXES):
            continue
        name = key
        for prefix in ("model.", "transformer.", "backbone."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        for old, new in _HAZY_RENAMES:
            name = name.replace(old, new)
        if name == "decay.decay":
            continue  # Based's fixed-decay buffer; recomputed from decay_const (decay.py)
        converted[name] = tensor
    return converted


def convert_mamba(state_dict: StateDict, tie_embeddings: bool = True) -> StateDict:
    """Mamba and Mamba-2: mamba_ssm keys load as they are. transformers' ``Mamba*ForCausalLM``
    differs only in ``backbone.embeddings`` (plural), renamed here. A tied head missing from the
    file is filled from the embedding."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("backbone.embeddings."):
            key = "backbone.embedding." + key[len("backbone.embeddings.") :]
        out[key] = value
    if tie_embeddings and "lm_head.weight" not in out:
        out["lm_head.weight"] = out["backbone.embedding.weight"]
    return out


def convert_gla(state_dict: StateDict, tie_word_embeddings: bool = False) -> StateDict:
    """fla keys load as they are, with two older/unfused layouts folded in: ``attn.g_norm`` (fla
    built with fuse_norm=False) -> ``attn.g_norm_swish_gate``, and an MLP ``gate_proj`` holding
    [gate; up] stacked (older fla GLAMLP, no ``up_proj``) -> split into gate_proj and up_proj."""
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.endswith(".attn.g_norm.weight"):
            key = key.replace(".attn.g_norm.weight", ".attn.g_norm_swish_gate.weight")
        out[key] = value
    for key in [k for k in out if k.endswith(".mlp.gate_proj.weight")]:
        up_key = key.replace("gate_proj", "up_proj")
        if up_key not in out:
            out[key], out[up_key] = out[key].chunk(2, dim=0)
    if tie_word_embeddings and "lm_head.weight" not in out:
        out["lm_head.weight"] = out["model.embeddings.weight"]
    return out


CONVERTERS: dict[str, Callable[[StateDict], StateDict]] = {
    "transformer": convert_hazy,
    "based": convert_hazy,
    "jrt_rnn": convert_hazy,
    "mamba": convert_mamba,
    "mamba2": convert_mamba,
    "gla": convert_gla,
}
