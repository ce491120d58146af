"""Held-out evaluation of a model being trained: answer accuracy (the answers objective), or the
perplexity protocol's slices on held-out documents (the next-token objective)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..protocols import Tokenizer
from ..tasks.bigrams import Counter
from ..tasks.perplexity import PerplexityParams, protocol_slice_sums
from ..tasks.slices import BigramCounts
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


# the sweep spec's default slice settings (workflows/sweep-spec.ts DEFAULT_SLICES)
VALIDATION_SLICES = {
    "frequency_threshold": 1000,
    "frequency_bin_edges": [0, 1, 10, 100, 1000, 10000, 100000],
    "distance_bin_edges": [1, 16, 64, 256, 1024, 4096],
    "bigram_counts": None,
}


def training_table(documents: np.ndarray) -> BigramCounts:
    """The bigram counts of exactly the documents the model trains on."""
    counter = Counter()
    rows, width = documents.shape
    for first in range(0, rows, 1024):
        block = documents[first : first + 1024]
        counter.add(block.ravel(), np.arange(len(block), dtype=np.int64) * width)
    return counter.table()


@torch.no_grad()
def evaluate_perplexity(
    model: nn.Module,
    documents: np.ndarray,
    table: BigramCounts,
    corpus: str,
    device: str,
    batch_size: int = 8,
) -> dict[str, Any]:
    """The perplexity task's protocol on held-out documents: the last half of each scored, split
    into AR hits and Other (and Figure 3's bins), plus the mean NLL over every scored token."""
    was_training = model.training
    model.eval()
    width = documents.shape[1]
    params = PerplexityParams.model_validate(
        {
            "corpus": corpus,
            "numExamples": len(documents),
            "sequenceTokens": width,
            "scoredTokens": width // 2,
            "recallMinDistance": max(1, width // 2),
        }
    )
    totals: dict[str, list[float]] = {}
    for start in range(0, len(documents), batch_size):
        ids = torch.from_numpy(documents[start : start + batch_size].astype(np.int64)).to(device)
        logits = model(ids, torch.ones_like(ids, dtype=torch.bool)).float()
        nll = -torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        for row, values in zip(ids.tolist(), nll.double().cpu().tolist(), strict=True):
            for entry in protocol_slice_sums(row, values, VALIDATION_SLICES, table, params):
                total = totals.setdefault(entry["slice"], [0.0, 0])
                total[0] += entry["nllSum"]
                total[1] += entry["tokenCount"]
    model.train(was_training)
    scored = totals["ar_hit"][1] + totals["other"][1]
    return {
        "valLoss": (totals["ar_hit"][0] + totals["other"][0]) / max(1, scored),
        "arHitPerplexity": _perplexity(totals["ar_hit"]),
        "otherPerplexity": _perplexity(totals["other"]),
        "slices": {k: {"nllSum": v[0], "tokenCount": v[1]} for k, v in totals.items()},
    }


def _perplexity(total: list[float]) -> float | None:
    return math.exp(total[0] / total[1]) if total[1] else None
