"""What is minimised: the model built from its config, next-token loss on answers and newlines,
JRT-RNN's masked-LM term over the encoder region, and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..models.init import initialize
from ..models.registry import build_model
from .config import ZooTrainingConfig
from .data import Batch

# ---------------------------------------------------------------------------------------------
# Model, objective
# ---------------------------------------------------------------------------------------------


def build_zoo_model(config: ZooTrainingConfig) -> nn.Module:
    model = build_model(config.family, config.model)
    initialize(model, config.family, config.seed, decoder_std=None)
    return model


@contextmanager
def encoder_regions(model: nn.Module, prompt_lengths: torch.Tensor) -> Iterator[None]:
    """JRT-RNN: limit each row's encoder region to its prompt (at most M tokens) for one
    forward pass. At inference the prompt is all the encoder ever sees, so during training the
    answer must stay out of the non-causal region too, or the model could read it. The layers
    compare a running count of real tokens with ``encoder_length``; a [B, 1] tensor makes that
    per row."""
    layers = [m for m in model.modules() if hasattr(m, "encoder_length")]
    saved = [m.encoder_length for m in layers]
    try:
        for m, full in zip(layers, saved, strict=True):
            m.encoder_length = prompt_lengths.clamp(max=full)[:, None]
        yield
    finally:
        for m, full in zip(layers, saved, strict=True):
            m.encoder_length = full


def model_logits(
    model: nn.Module,
    family: str,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    prompt_lengths: torch.Tensor,
) -> torch.Tensor:
    if family == "jrt_rnn":
        with encoder_regions(model, prompt_lengths):
            return model(input_ids, mask)
    return model(input_ids, mask)


def mask_encoder_tokens(
    batch: Batch, model: nn.Module, probability: float, mask_id: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spec 6.2: each encoder-region token becomes [MASK] with ``probability``; returns the
    corrupted ids and the MLM targets (original id where masked, -100 elsewhere)."""
    encoder_length = min(m.encoder_length for m in model.modules() if hasattr(m, "encoder_length"))
    real_index = batch.mask.long().cumsum(dim=1)  # 1-based among real tokens
    region = batch.mask & (real_index <= batch.prompt_lengths.clamp(max=encoder_length)[:, None])
    # The last prompt column's logits carry the answer's next-token loss; masking its input would
    # also give those logits two targets, so it is never chosen.
    region &= real_index != batch.prompt_lengths[:, None]
    draw = torch.rand(batch.input_ids.shape, generator=gen).to(region.device)
    chosen = region & (draw < probability)
    ids = torch.where(chosen, torch.full_like(batch.input_ids, mask_id), batch.input_ids)
    targets = torch.where(chosen, batch.input_ids, torch.full_like(batch.input_ids, -100))
    return ids, targets


def loss_terms(
    model: nn.Module, config: ZooTrainingConfig, batch: Batch, mask_id: int, gen: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss on answer + newline; for JRT-RNN plus ``mlm_weight`` x masked-LM loss on
    the encoder region (the released code's form: L_NTP + 0.25 L_MLM, no normalising divide)."""
    ids, mlm_targets = batch.input_ids, None
    if config.mlm_weight > 0:
        ids, mlm_targets = mask_encoder_tokens(batch, model, config.mlm_probability, mask_id, gen)
    logits = model_logits(model, config.family, ids, batch.mask, batch.prompt_lengths)
    ntp = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=-100)
    terms = {"ntp": ntp.item()}
    loss = ntp
    if mlm_targets is not None:
        if (mlm_targets != -100).any():
            # MLM predicts the original token at the same position (no shift).
            mlm = F.cross_entropy(logits.flatten(0, 1), mlm_targets.flatten(), ignore_index=-100)
            loss = loss + config.mlm_weight * mlm
            terms["mlm"] = mlm.item()
    terms["loss"] = loss.item()
    return loss, terms


def lr_at(step: int, config: ZooTrainingConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` x lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
