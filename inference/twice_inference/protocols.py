"""The seams between the worker's parts: tokenizers, models, tasks, strategies.

The engine (``engine/``) only talks to models and tasks through these protocols, so a new model
family or task plugs in without touching orchestration code. Run ``pytest inference/tests``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> token ids. Real checkpoints wrap Hugging Face tokenizers; the tiny zoo uses a word
    tokenizer over the synthetic tasks' vocabulary."""

    name: str
    vocab_size: int
    newline_id: int  # generation stops when this id is produced
    pad_id: int  # fills batch slots; never allowed to influence a model's state

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class RecurrentState(Protocol):
    """Opaque per-model decoding state. Fixed size for recurrent families, a growing KV cache for
    attention. ``nbytes`` is what the Pareto state-size axis reports."""

    def nbytes(self) -> int: ...


@runtime_checkable
class LanguageModel(Protocol):
    """One adapter per family. ``forward`` is the parallel (prefill/training) form; ``prefill`` +
    ``step`` are the recurrent inference form. Both must compute the same function.

    Padding contract: batches are LEFT-padded and ``mask`` is 1 for real tokens, 0 for padding.
    Padding positions must not contribute to any state (no KV entries, no recurrent update, no
    convolution input), so a prompt's outputs do not depend on what else is in its batch.
    """

    family: str
    vocab_size: int

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T] ids (+ [B, T] mask) -> [B, T, V] logits, all positions."""
        ...

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """[B, T] left-padded prompt -> ([B, V] logits at the last position, state)."""
        ...

    def step(self, token_ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """[B] next ids -> ([B, V] logits, state advanced by one token)."""
        ...

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        """Decoding-state bytes for one sequence after ``prompt_len`` tokens (constant for
        recurrent families; grows with length for attention)."""
        ...


@dataclass(frozen=True)
class Example:
    """One scored item: the prompt as the model sees it, after the strategy has been applied."""

    example_id: int
    prompt_ids: list[int]
    gold: list[str]  # any match counts (contains) / the answer (exact)
    prompt_text: str = ""  # digest input and human inspection; may be empty for pure-token tasks
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategySpec:
    """A prompt strategy as named in a sweep spec. ``version`` is part of the cell key."""

    name: str  # default | jrt_prompt | question_first | few_shot | jrt_rnn_left_pad | ...
    version: int
    params: dict[str, Any] = field(default_factory=dict)  # e.g. {"repeats": 2} for jrt_prompt


class Task(Protocol):
    """A recall task. Examples are a pure function of (params, example_id, tokenizer, strategy):
    a retried shard regenerates exactly the same prompts."""

    # read-only: a task's name and version are class constants of its implementation
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    def num_examples(self) -> int: ...

    def examples(
        self, start: int, end: int, tokenizer: Tokenizer, strategy: StrategySpec
    ) -> list[Example]: ...

    def score(self, prediction: str, gold: list[str]) -> float: ...
