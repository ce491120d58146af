"""Tokenizer loading, the fixed word-level vocabulary ``synthetic-v1`` that every synthetic task
and every in-house tiny model share, and the byte-level ``bytes-v1`` that can spell any text (the
random-weight debug models use it to smoke-test the real tasks). Hugging Face specs are handed to
``hf_tokenizer`` lazily. Tested by ``tests/test_tokenizers.py`` (round trips, unknown words, pinned
vocabulary and definition digests).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from functools import cache

from .protocols import Tokenizer

SYNTHETIC_V1 = "synthetic-v1"
BYTES_V1 = "bytes-v1"

PAD = "<pad>"
NEWLINE = "\n"
PUNCTUATION = (":", ".", ",", "?", "|")
# "information about KEY ." is the paper's JRT lead-in for FDA/SWDE; it must be spellable here.
PROMPT_WORDS = ("information", "about")

MQAR_KEY_COUNT = 512
MQAR_VALUE_COUNT = 512
# Two halves of 768: the paper's largest set-disjointness test size is 768 per set.
SET_ELEMENT_COUNT = 1536
NUMBER_COUNT = 256
YEARS = range(1900, 2028)

MQAR_KEYS = tuple(f"k{i}" for i in range(MQAR_KEY_COUNT))
MQAR_VALUES = tuple(f"v{i}" for i in range(MQAR_VALUE_COUNT))
SET_ELEMENTS = tuple(f"e{i}" for i in range(SET_ELEMENT_COUNT))
NUMBERS = tuple(str(i) for i in range(NUMBER_COUNT))
YEAR_WORDS = tuple(str(y) for y in YEARS)

COLORS = (
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "orange",
    "black",
    "white",
    "gray",
    "brown",
    "pink",
    "teal",
    "gold",
    "silver",
    "violet",
    "amber",
)
MATERIALS = (
    "steel",
    "wood",
    "glass",
    "stone",
    "copper",
    "iron",
    "clay",
    "paper",
    "cotton",
    "wool",
    "leather",
    "plastic",
    "bronze",
    "marble",
    "granite",
    "rubber",
)
SECTORS = (
    "farming",
    "mining",
    "shipping",
    "banking",
    "textiles",
    "software",
    "energy",
    "retail",
    "fishing",
    "printing",
    "brewing",
    "tourism",
    "medicine",
    "transport",
    "publishing",
    "insurance",
)
ANIMALS = (
    "fox",
    "owl",
    "wolf",
    "bear",
    "hawk",
    "deer",
    "otter",
    "heron",
    "lynx",
    "badger",
    "falcon",
    "bison",
    "crane",
    "eagle",
    "hare",
    "moose",
)
PRODUCTS = (
    "lamps",
    "chairs",
    "engines",
    "bicycles",
    "clocks",
    "boots",
    "radios",
    "kettles",
    "ropes",
    "tents",
    "pumps",
    "valves",
    "saddles",
    "lenses",
    "bells",
    "drums",
)
FILLER_WORDS = (
    "the",
    "a",
    "of",
    "and",
    "in",
    "on",
    "was",
    "were",
    "is",
    "are",
    "it",
    "its",
    "this",
    "that",
    "with",
    "for",
    "by",
    "from",
    "at",
    "to",
    "after",
    "before",
    "during",
    "under",
    "over",
    "each",
    "every",
    "some",
    "many",
    "few",
    "new",
    "old",
    "large",
    "small",
    "early",
    "late",
    "annual",
    "local",
    "public",
    "private",
    "report",
    "record",
    "notes",
    "section",
    "page",
    "entry",
    "review",
    "office",
    "staff",
    "meeting",
    "season",
    "market",
    "budget",
    "plan",
    "survey",
    "archive",
    "letter",
    "visit",
    "project",
    "team",
    "board",
    "committee",
    "approved",
    "filed",
    "updated",
    "signed",
    "listed",
    "noted",
    "held",
    "opened",
    "closed",
    "moved",
    "later",
    "also",
    "again",
    "often",
    "rarely",
    "quietly",
    "briefly",
)

# Pseudo-word pools: consonant-vowel syllable pairs in a fixed hash order, so the pools are
# stable across Python versions and need no random generator.
PSEUDO_WORD_POOL_SIZES = {
    "name": 64,
    "city": 32,
    "country": 24,
    "founder": 32,
    "river": 16,
    "language": 16,
}


def _pseudo_word_stream() -> list[str]:
    syllables = [c + v for c, v in itertools.product("bdfgklmnprstvz", "aeiou")]
    words = [a + b for a, b in itertools.product(syllables, syllables)]
    return sorted(words, key=lambda w: hashlib.sha256(w.encode()).hexdigest())


def _build_vocabulary() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    fixed_words = [
        PAD,
        NEWLINE,
        *PUNCTUATION,
        *PROMPT_WORDS,
        *MQAR_KEYS,
        *MQAR_VALUES,
        *SET_ELEMENTS,
        *NUMBERS,
        *YEAR_WORDS,
    ]
    word_pools: dict[str, tuple[str, ...]] = {
        "year": YEAR_WORDS,
        "employees": NUMBERS,
        "color": COLORS,
        "material": MATERIALS,
        "sector": SECTORS,
        "animal": ANIMALS,
        "product": PRODUCTS,
    }
    taken = (
        set(fixed_words)
        | set(COLORS)
        | set(MATERIALS)
        | set(SECTORS)
        | set(ANIMALS)
        | set(PRODUCTS)
        | set(FILLER_WORDS)
        | set(PSEUDO_WORD_POOL_SIZES)
        | set(word_pools)
    )
    stream = (w for w in _pseudo_word_stream() if w not in taken)
    attribute_pools = {
        attribute: tuple(itertools.islice(stream, size))
        for attribute, size in PSEUDO_WORD_POOL_SIZES.items()
    }
    attribute_pools.update(word_pools)
    attribute_names = tuple(attribute_pools)  # insertion order is part of the version
    words = [
        *fixed_words,
        *attribute_names,
        *FILLER_WORDS,
        *COLORS,
        *MATERIALS,
        *SECTORS,
        *ANIMALS,
        *PRODUCTS,
    ]
    for attribute in PSEUDO_WORD_POOL_SIZES:
        words.extend(attribute_pools[attribute])
    duplicates = sorted({w for w in words if words.count(w) > 1})
    if duplicates:
        raise AssertionError(f"synthetic-v1 vocabulary has duplicate words: {duplicates}")
    return tuple(words), attribute_pools


SYNTHETIC_V1_WORDS, DOC_ATTRIBUTE_POOLS = _build_vocabulary()
# Attribute names in vocabulary order; synthetic_doc_qa draws its facts from these.
DOC_ATTRIBUTES = tuple(DOC_ATTRIBUTE_POOLS)

_SPLIT = re.compile(r"\n|[^\s]+")


class WordTokenizer:
    """Whitespace word tokenizer over a closed vocabulary; a newline is a word of its own.

    Canonical text is words joined by single spaces with no spaces around a newline, so
    ``decode(encode(text)) == text`` for canonical text and ``encode(decode(ids)) == ids`` always.
    """

    def __init__(self, name: str, words: tuple[str, ...]) -> None:
        self.name = name
        self.words = words
        self.vocab_size = len(words)
        self._ids = {w: i for i, w in enumerate(words)}
        self.pad_id = self._ids[PAD]
        self.newline_id = self._ids[NEWLINE]

    def encode(self, text: str) -> list[int]:
        ids = []
        for match in _SPLIT.finditer(text):
            word = match.group()
            token_id = self._ids.get(word)
            if token_id is None:
                raise ValueError(
                    f"{self.name}: unknown word {word!r} at character {match.start()}; the "
                    "vocabulary is closed and split on whitespace, so punctuation must stand "
                    "apart as its own word"
                )
            ids.append(token_id)
        return ids

    def decode(self, ids: list[int]) -> str:
        pieces: list[str] = []
        previous = NEWLINE  # no space before the first word
        for token_id in ids:
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"{self.name}: token id {token_id} outside [0, {self.vocab_size})")
            word = self.words[token_id]
            if word != NEWLINE and previous != NEWLINE:
                pieces.append(" ")
            pieces.append(word)
            previous = word
        return "".join(pieces)

    def vocabulary_digest(self) -> str:
        """sha256 of the word list; pinned by a test so any change forces a new version name."""
        return hashlib.sha256("\x00".join(self.words).encode()).hexdigest()


SYNTHETIC_TOKENIZERS = {SYNTHETIC_V1: SYNTHETIC_V1_WORDS}

BYTE_VALUES = 256
NEWLINE_BYTE = ord(NEWLINE)


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, then special tokens with no text form (pad first).

    Any text encodes, so ``decode(encode(text)) == text`` for every string. Ids that stop inside a
    multi-byte character (a cut window, a model's free output) decode to U+FFFD instead of failing;
    special ids decode to nothing.
    """

    def __init__(self, name: str, specials: tuple[str, ...]) -> None:
        if not specials or specials[0] != PAD:
            raise ValueError(f"{name}: the first special token must be {PAD!r}, got {specials!r}")
        self.name = name
        self.specials = specials
        self.vocab_size = BYTE_VALUES + len(specials)
        self.pad_id = BYTE_VALUES
        self.newline_id = NEWLINE_BYTE

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        raw = bytearray()
        for token_id in ids:
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"{self.name}: token id {token_id} outside [0, {self.vocab_size})")
            if token_id < BYTE_VALUES:
                raw.append(token_id)
        return raw.decode("utf-8", errors="replace")

    def definition(self) -> str:
        """Everything that fixes what an id means, as canonical JSON."""
        return json.dumps(
            {
                "bytes": f"utf-8 ids 0..{BYTE_VALUES - 1}",
                "specials": {word: BYTE_VALUES + i for i, word in enumerate(self.specials)},
                "newline_id": self.newline_id,
                "decode_errors": "replace",
            },
            sort_keys=True,
        )

    def vocabulary_digest(self) -> str:
        """sha256 of ``definition()``; pinned by a test so any change forces a new version name."""
        return hashlib.sha256(self.definition().encode()).hexdigest()


# spec -> special tokens after the 256 byte ids.
BYTE_TOKENIZERS = {BYTES_V1: (PAD,)}


@cache
def _synthetic_tokenizer(spec: str) -> WordTokenizer:
    return WordTokenizer(spec, SYNTHETIC_TOKENIZERS[spec])


@cache
def _byte_tokenizer(spec: str) -> ByteTokenizer:
    return ByteTokenizer(spec, BYTE_TOKENIZERS[spec])


def load_tokenizer(spec: str) -> Tokenizer:
    """``synthetic-*`` -> the in-house word tokenizer; ``bytes-*`` -> the byte tokenizer; anything
    else -> a Hugging Face tokenizer."""
    if spec.startswith("bytes-"):
        if spec not in BYTE_TOKENIZERS:
            raise ValueError(
                f"tokenizer spec {spec!r}: unknown byte tokenizer; known: {sorted(BYTE_TOKENIZERS)}"
            )
        return _byte_tokenizer(spec)
    if spec.startswith("synthetic-"):
        if spec not in SYNTHETIC_TOKENIZERS:
            raise ValueError(
                f"tokenizer spec {spec!r}: unknown synthetic vocabulary; known: "
                f"{sorted(SYNTHETIC_TOKENIZERS)}"
            )
        return _synthetic_tokenizer(spec)
    # Imported here so the synthetic path never needs `transformers`.
    from .hf_tokenizer import load_hf_tokenizer

    return load_hf_tokenizer(spec)
