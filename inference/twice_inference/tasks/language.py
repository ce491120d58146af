"""A synthetic language in which recall occurs: ``repeats-v1``, over the ``synthetic-v1`` words.

The zoo's next-token models are trained on it and the ``perplexity`` task evaluates on held-out
documents of it (docs/protocol.md, Perplexity protocol). What a document holds:

- *Common words* (the filler, colour, material, sector, animal, product and number words) follow a
  fixed sparse Markov chain: each has ``SUCCESSORS`` possible next words with Zipf weights. These
  bigrams are frequent in training and are predictable from the previous word alone.
- *Names* (the MQAR key/value and set-element words, 2,560 of them) are sprinkled in at rate
  ``NAME_RATE``, uniformly: a fresh name cannot be predicted, and any bigram that touches a name is
  rare in training.
- *Repeated spans*: after the first ``MIN_COPY_START`` tokens, a segment is, with probability
  ``COPY_PROBABILITY``, a copy of an earlier span of the same document, from a source drawn
  uniformly before it. A copied name completes a bigram seen earlier in the document and rare in
  training: an AR hit, which only recall of the context can predict. Distances run from a few
  tokens to the whole document.

Everything is a pure function of (seed, document index); documents come in blocks of ``BLOCK``
generated together (vectorised over the block), so producing 10k documents takes seconds.
Tested by ``tests/test_language.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..tokenizers import (
    ANIMALS,
    COLORS,
    FILLER_WORDS,
    MATERIALS,
    MQAR_KEYS,
    MQAR_VALUES,
    NUMBERS,
    PRODUCTS,
    SECTORS,
    SET_ELEMENTS,
    SYNTHETIC_V1,
    load_tokenizer,
)

DOC_TOKENS = 2048
BLOCK = 1024
SUCCESSORS = 8
NAME_RATE = 0.15
COPY_PROBABILITY = 0.35
MIN_COPY_START = 64
SEGMENT = (8, 40)  # segment lengths, inclusive
STRUCTURE_SEED = 16_2026  # fixes the chain; part of the language's version
# The training corpus: documents [0, TRAIN_DOCUMENTS) of stream TRAIN_SEED. Evaluation specs use
# seeds below 1,000 (train.py's EVAL_SEED_LIMIT), so no evaluated document was trained on.
TRAIN_SEED = 1_500_000
TRAIN_DOCUMENTS = 16_384
LANGUAGE_NAMES = ("repeats-v1",)


@dataclass(frozen=True)
class Language:
    name: str
    common: np.ndarray  # token ids of the chain's words
    names: np.ndarray  # token ids of the names
    successors: np.ndarray  # [len(common), SUCCESSORS] indices into common
    cumulative: np.ndarray  # [SUCCESSORS] cumulative Zipf weights, last = 1

    def digest(self) -> str:
        """Identifies the language's text: its structure and every constant that shapes it."""
        h = hashlib.sha256()
        h.update(
            repr(
                (self.name, DOC_TOKENS, BLOCK, NAME_RATE, COPY_PROBABILITY, MIN_COPY_START, SEGMENT)
            ).encode()
        )
        for array in (self.common, self.names, self.successors, self.cumulative):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(_vocabulary_digest().encode())
        return h.hexdigest()

    def documents(self, seed: int, start: int, end: int) -> np.ndarray:
        """Documents ``[start, end)`` of stream ``seed``, int32 ``[end - start, DOC_TOKENS]``."""
        if not 0 <= start <= end:
            raise ValueError(f"document range [{start}, {end}) is not valid")
        rows = [
            self._block(seed, block)[max(start - block * BLOCK, 0) : end - block * BLOCK]
            for block in range(start // BLOCK, (end + BLOCK - 1) // BLOCK)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, DOC_TOKENS), np.int32)

    def blocks(self, seed: int, count: int) -> Iterator[np.ndarray]:
        """The first ``count`` documents of a stream, a block at a time."""
        for block in range((count + BLOCK - 1) // BLOCK):
            yield self._block(seed, block)[: count - block * BLOCK]

    def _block(self, seed: int, block: int) -> np.ndarray:
        rng = np.random.default_rng([STRUCTURE_SEED, seed, block])
        out = np.empty((BLOCK, DOC_TOKENS), np.int32)
        state = rng.integers(len(self.common), size=BLOCK)
        is_name = rng.random((BLOCK, DOC_TOKENS)) < NAME_RATE
        name_ids = self.names[rng.integers(len(self.names), size=(BLOCK, DOC_TOKENS))]
        choice = np.searchsorted(self.cumulative, rng.random((BLOCK, DOC_TOKENS)), side="right")
        choice = np.minimum(choice, SUCCESSORS - 1)
        for t in range(DOC_TOKENS):
            following = self.successors[state, choice[:, t]]
            out[:, t] = np.where(is_name[:, t], name_ids[:, t], self.common[following])
            state = np.where(is_name[:, t], state, following)
        lengths = rng.integers(SEGMENT[0], SEGMENT[1] + 1, size=(BLOCK, DOC_TOKENS // SEGMENT[0]))
        copy_draw = rng.random((BLOCK, DOC_TOKENS // SEGMENT[0]))
        source_draw = rng.random((BLOCK, DOC_TOKENS // SEGMENT[0]))
        for row in range(BLOCK):
            doc = out[row]
            position, segment = 0, 0
            while position < DOC_TOKENS:
                length = int(lengths[row, segment])
                if position >= MIN_COPY_START and copy_draw[row, segment] < COPY_PROBABILITY:
                    length = min(length, DOC_TOKENS - position)
                    source = int(source_draw[row, segment] * (position - length + 1))
                    doc[position : position + length] = doc[source : source + length].copy()
                position += length
                segment += 1
        return out


def _vocabulary_digest() -> str:
    tokenizer = load_tokenizer(SYNTHETIC_V1)
    return str(tokenizer.vocabulary_digest())  # type: ignore[attr-defined]


def _ids(words: tuple[str, ...]) -> list[int]:
    tokenizer = load_tokenizer(SYNTHETIC_V1)
    return [tokenizer.encode(word)[0] for word in words]


@cache
def load_language(name: str) -> Language:
    if name not in LANGUAGE_NAMES:
        raise ValueError(f"unknown synthetic language {name!r}; known: {list(LANGUAGE_NAMES)}")
    common = np.array(
        sorted(
            set(_ids((*FILLER_WORDS, *COLORS, *MATERIALS, *SECTORS, *ANIMALS, *PRODUCTS, *NUMBERS)))
        ),
        np.int32,
    )
    names = np.array(_ids((*MQAR_KEYS, *MQAR_VALUES, *SET_ELEMENTS)), np.int32)
    rng = np.random.default_rng([STRUCTURE_SEED])
    successors = np.stack(
        [rng.choice(len(common), size=SUCCESSORS, replace=False) for _ in range(len(common))]
    )
    weights = 1.0 / np.arange(1, SUCCESSORS + 1)
    return Language(name, common, names, successors, np.cumsum(weights / weights.sum()))
