"""Held-out answer accuracy of a model being trained."""

from __future__ import annotations

import torch
from torch import nn

from ..protocols import Tokenizer
from .config import ZooTrainingConfig
from .data import Sequence, collate
from .objective import model_logits


@torch.no_grad()
def evaluate(
    model: nn.Module,
    config: ZooTrainingConfig,
    sets: dict[str, dict[str, list[Sequence]]],
    tokenizer: Tokenizer,
    device: str,
    limit: int | None = None,
    batch_size: int = 128,
) -> dict[str, dict[str, dict]]:
    """Greedy answer accuracy (argmax after the prompt == the answer word) and stop accuracy
    (argmax after the answer == newline) per task per strategy."""
    was_training = model.training
    model.eval()
    out: dict[str, dict[str, dict]] = {}
    for task, by_strategy in sets.items():
        out[task] = {}
        for strategy, sequences in by_strategy.items():
            sequences = sequences[:limit] if limit else sequences
            answer_hits = stop_hits = 0
            for start in range(0, len(sequences), batch_size):
                chunk = sequences[start : start + batch_size]
                batch = collate(chunk, tokenizer.pad_id, tokenizer.newline_id).to(device)
                logits = model_logits(
                    model, config.family, batch.input_ids, batch.mask, batch.prompt_lengths
                )[..., : tokenizer.vocab_size]
                answer_hits += int((logits[:, -2].argmax(-1) == batch.targets[:, -2]).sum())
                stop_hits += int((logits[:, -1].argmax(-1) == batch.targets[:, -1]).sum())
            n = len(sequences)
            out[task][strategy] = {
                "accuracy": answer_hits / n,
                "stopAccuracy": stop_hits / n,
                "n": n,
            }
    model.train(was_training)
    return out
