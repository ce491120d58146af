"""The ``perplexity`` task (kind "perplexity", scorer "none"): the paper's Figure 3 protocol over a
local corpus (docs/protocol.md, Perplexity protocol). Each example is one sequence: a document's
first ``sequenceTokens`` ids (2048), of which positions ``>= sequenceTokens - scoredTokens`` (the
last 1024) are scored; earlier ones are context. A shorter document is read as far as it goes, so
it adds fewer (or no) scored tokens. Nothing is generated; the shard returns slice sums only.

Slices of one sequence (protocol version 1, the task's version), with ``T`` the spec's
``slices.frequencyThreshold``, counts from the training bigram table, and the distance from the
most recent earlier occurrence of the bigram in the sequence:

- ``ar_hit``: the bigram ending here occurred earlier in the sequence and its count is ``< T``;
  ``other``: every other scored token (a repeat of a frequent bigram is Other).
- Figure 3's three panels, binned over ``slices`` bin edges (``[lo, hi)``, the last one open):
  ``fig3/recall-freq:<bin>``: repeats whose distance is ``>= recallMinDistance`` (1024), by
  training count; ``fig3/recall-dist:<bin>``: repeats whose count is ``< distanceMaxCount``
  (1000), by distance; ``fig3/other-freq:<bin>``: non-repeats (the bigram did not occur earlier
  in the sequence), by training count.

Sums of NLL quantised as in slices.py, so shards add up exactly. Tested by
``tests/test_perplexity.py`` (slice counts on a hand-made corpus).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from ..protocols import Tokenizer
from ..tokenizers import SYNTHETIC_V1
from .corpus import (
    CorpusRef,
    corpus_digest,
    count_documents,
    file_documents,
    resolve_corpus,
)
from .language import DOC_TOKENS
from .slices import (
    _SCALE,
    BigramCounts,
    SliceConfig,
    bin_index,
    bin_labels,
    classify_tokens,
    quantize_nll,
    slice_config,
    table_for,
)
from .synthetic import SpecParams, canonical_json, parse_params

# bounds as in workflows/catalog.ts (LIMITS); tests/test_task_catalog.py checks they agree
MAX_SEQUENCE_TOKENS = 32_768
MAX_SEQUENCES = 100_000
MAX_SEED = 2**32 - 1
MAX_COUNT = 2**31 - 1
PROTOCOL_VERSION = 1
PANELS = ("fig3/recall-freq", "fig3/recall-dist", "fig3/other-freq")


class PerplexityParams(SpecParams):
    # synthetic:<language>, or a JSONL file under the data root
    corpus: str = Field(min_length=1, max_length=1024)
    num_examples: int = Field(default=32, ge=1, le=MAX_SEQUENCES)
    # which held-out stream of a generated language (ignored for a file)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    sequence_tokens: int = Field(default=2048, ge=2, le=MAX_SEQUENCE_TOKENS)
    scored_tokens: int = Field(default=1024, ge=1, le=MAX_SEQUENCE_TOKENS)
    recall_min_distance: int = Field(default=1024, ge=1, le=MAX_SEQUENCE_TOKENS)
    distance_max_count: int = Field(default=1000, ge=1, le=MAX_COUNT)

    @model_validator(mode="after")
    def _check(self) -> PerplexityParams:
        if self.scored_tokens >= self.sequence_tokens:
            raise ValueError(
                f"scoredTokens={self.scored_tokens} must be below sequenceTokens="
                f"{self.sequence_tokens} (the first token has no prediction)"
            )
        if ".." in Path(self.corpus).parts:
            raise ValueError(f"corpus {self.corpus!r}: a path under the data root, without '..'")
        return self


class PerplexityTask:
    name: ClassVar[str] = "perplexity"
    version: ClassVar[int] = PROTOCOL_VERSION
    kind: ClassVar[str] = "perplexity"
    params_model: ClassVar[type[PerplexityParams]] = PerplexityParams

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = parse_params(self.name, PerplexityParams, params)
        self.corpus: CorpusRef = resolve_corpus(self.params.corpus)
        if self.corpus.language is not None and self.params.sequence_tokens > DOC_TOKENS:
            raise ValueError(
                f"task {self.name!r} params: sequenceTokens={self.params.sequence_tokens}: "
                f"documents of {self.params.corpus} hold {DOC_TOKENS} tokens"
            )
        if self.corpus.path is not None:
            available = count_documents(self.corpus.path)
            if available < self.params.num_examples:
                raise ValueError(
                    f"task {self.name!r} params: numExamples={self.params.num_examples} but "
                    f"{self.corpus.path} holds {available} documents"
                )

    def num_examples(self) -> int:
        return self.params.num_examples

    def data_digest(self) -> str:
        identity = {
            "name": self.name,
            "version": self.version,
            "corpus": corpus_digest(self.corpus),
            "params": self.params.model_dump(by_alias=True),
        }
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()

    def sequences(self, start: int, end: int, tokenizer: Tokenizer) -> list[list[int]]:
        if not 0 <= start <= end <= self.num_examples():
            raise ValueError(
                f"task {self.name!r}: example range [{start}, {end}) is outside "
                f"[0, {self.num_examples()})"
            )
        length = self.params.sequence_tokens
        if self.corpus.language is not None:
            if tokenizer.name != SYNTHETIC_V1:
                raise ValueError(
                    f"{self.params.corpus} is written in synthetic-v1 ids; the model's tokenizer "
                    f"is another vocabulary"
                )
            documents = self.corpus.language.documents(self.params.seed, start, end)
            return [row[:length].tolist() for row in documents]
        assert self.corpus.path is not None
        return [ids[:length] for ids in file_documents(self.corpus.path, tokenizer, start, end)]

    def bigram_table(
        self, config: SliceConfig, on_chunk: Callable[[int], None] | None = None
    ) -> BigramCounts:
        """The spec's table when it names one; for a generated language without one, the table
        of the language's own training stream (``twice bigrams build`` output, built on first
        use). A file corpus needs a table: without counts there are no AR hits to define."""
        table = table_for(config)
        if table is not None:
            return table
        if self.corpus.language is None:
            raise ValueError(
                f"task {self.name!r}: corpus {self.params.corpus} needs slices.bigramCounts "
                f"(a table from `twice bigrams build <training corpus>`)"
            )
        from .bigrams import build_cached

        return _language_table(str(build_cached(self.params.corpus, None, on_chunk)))


@lru_cache(maxsize=2)
def _language_table(path: str) -> BigramCounts:
    from .slices import load_bigram_counts

    return load_bigram_counts(path)


def panel_slice_names(config: SliceConfig) -> list[str]:
    frequency = bin_labels(config.frequency_bin_edges)
    distance = bin_labels(config.distance_bin_edges)
    return [
        "ar_hit",
        "other",
        *(f"fig3/recall-freq:{b}" for b in frequency),
        *(f"fig3/recall-dist:{b}" for b in distance),
        *(f"fig3/other-freq:{b}" for b in frequency),
    ]


def protocol_slice_sums(
    ids: Sequence[int],
    nll: Sequence[float],
    settings: Any,
    table: BigramCounts,
    params: PerplexityParams,
) -> list[dict[str, Any]]:
    """``nll[j]`` is the NLL of token ``j + 1`` (the engine's ``prompt_nll`` form). Every slice
    is emitted, empty ones with count 0, in a fixed order."""
    if len(nll) != max(len(ids) - 1, 0):
        raise ValueError(f"nll has {len(nll)} entries for {len(ids)} ids (expected one fewer)")
    config = slice_config(settings)
    first_scored = params.sequence_tokens - params.scored_tokens
    totals = {name: [0, 0] for name in panel_slice_names(config)}
    frequency = bin_labels(config.frequency_bin_edges)
    distance = bin_labels(config.distance_bin_edges)

    def add(name: str, quantum: int) -> None:
        totals[name][0] += quantum
        totals[name][1] += 1

    for token in classify_tokens(ids, config, table, first_scored):
        quantum = quantize_nll(nll[token.position - 1], token.position)
        add("ar_hit" if token.ar_hit else "other", quantum)
        count_bin = bin_index(token.train_count, config.frequency_bin_edges)
        if token.repeat:
            assert token.distance is not None
            if token.distance >= params.recall_min_distance and count_bin is not None:
                add(f"fig3/recall-freq:{frequency[count_bin]}", quantum)
            distance_bin = bin_index(token.distance, config.distance_bin_edges)
            if token.train_count < params.distance_max_count and distance_bin is not None:
                add(f"fig3/recall-dist:{distance[distance_bin]}", quantum)
        elif count_bin is not None:
            add(f"fig3/other-freq:{frequency[count_bin]}", quantum)
    return [
        {"slice": name, "nllSum": total / _SCALE, "tokenCount": count}
        for name, (total, count) in totals.items()
    ]
