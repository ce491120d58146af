"""The synthetic-v1 word tokenizer (pinned vocabulary, round trips, strict errors, HF dispatch) and
the bytes-v1 byte tokenizer (pinned definition, unicode round trips, lenient decoding)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from twice_inference.protocols import Tokenizer
from twice_inference.tokenizers import (
    DOC_ATTRIBUTE_POOLS,
    FILLER_WORDS,
    MQAR_KEYS,
    MQAR_VALUES,
    SET_ELEMENTS,
    load_tokenizer,
)

# Changing the vocabulary changes every tiny model's meaning: bump the spec name instead.
PINNED_SIZE = 3309
PINNED_DIGEST = "730d183e173feb8d1f7c52187188f570701287ec58fc4852dd2d7d82fd19d2d3"


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("synthetic-v1")


def test_vocabulary_is_pinned(tok) -> None:
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == PINNED_SIZE <= 4096
    assert tok.vocabulary_digest() == PINNED_DIGEST
    assert len(set(tok.words)) == tok.vocab_size


def test_special_ids(tok) -> None:
    assert (tok.pad_id, tok.newline_id) == (0, 1)
    assert tok.words[:7] == ("<pad>", "\n", ":", ".", ",", "?", "|")
    assert tok.name == "synthetic-v1"
    assert load_tokenizer("synthetic-v1") is tok


def test_word_pools_are_disjoint_and_in_vocabulary(tok) -> None:
    pools = [
        set(MQAR_KEYS),
        set(MQAR_VALUES),
        set(SET_ELEMENTS),
        set(FILLER_WORDS),
        *(set(p) for p in DOC_ATTRIBUTE_POOLS.values()),
        set(DOC_ATTRIBUTE_POOLS),
    ]
    union = set().union(*pools)
    assert sum(len(p) for p in pools) == len(union)
    assert union <= set(tok.words)


def test_round_trip_canonical_text(tok) -> None:
    text = (
        "information about city . city : "
        + DOC_ATTRIBUTE_POOLS["city"][0]
        + " .\nk1 v2\n\ne7 | e9 |"
    )
    ids = tok.encode(text)
    assert ids.count(tok.newline_id) == 3
    assert tok.decode(ids) == text


def test_encode_normalises_whitespace_but_keeps_newlines(tok) -> None:
    assert tok.encode("  k1\t v2 \n  k3 ") == tok.encode("k1 v2\nk3")
    assert tok.decode(tok.encode("k1 v2 \n k3")) == "k1 v2\nk3"


def test_decode_encode_round_trip_random_ids(tok) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, tok.vocab_size, size=500).tolist()  # pad has no text form to re-read
    ids[10:13] = [tok.newline_id] * 3
    assert tok.encode(tok.decode(ids)) == ids


def test_unknown_word_is_named(tok) -> None:
    with pytest.raises(ValueError, match=r"unknown word 'city:' at character 3"):
        tok.encode("k1 city: k2")
    with pytest.raises(ValueError, match="'Hello'"):
        tok.encode("Hello")


def test_decode_rejects_out_of_range_id(tok) -> None:
    with pytest.raises(ValueError, match=f"token id {PINNED_SIZE}"):
        tok.decode([3, PINNED_SIZE])
    with pytest.raises(ValueError, match="token id -1"):
        tok.decode([-1])


def test_unknown_synthetic_spec(tok) -> None:
    with pytest.raises(ValueError, match=r"'synthetic-v9'.*synthetic-v1"):
        load_tokenizer("synthetic-v9")


def test_other_specs_dispatch_to_hf_loader(monkeypatch) -> None:
    seen = []
    module = types.ModuleType("twice_inference.hf_tokenizer")
    module.load_hf_tokenizer = lambda spec: seen.append(spec) or "hf-tokenizer"
    monkeypatch.setitem(sys.modules, "twice_inference.hf_tokenizer", module)
    assert load_tokenizer("EleutherAI/gpt-neox-20b") == "hf-tokenizer"
    assert seen == ["EleutherAI/gpt-neox-20b"]


# ---------------------------------------------------------------------------------------------
# bytes-v1: byte-level, spells any text (the random-weight debug models use it on real tasks)
# ---------------------------------------------------------------------------------------------

BYTES_V1_SIZE = 257
BYTES_V1_DIGEST = "208db1207e74d391a34519e922ad5daad0992daa217b04f6f3ebd4b8f064fe3d"


@pytest.fixture(scope="module")
def byte_tok():
    return load_tokenizer("bytes-v1")


def test_bytes_v1_definition_is_pinned(byte_tok) -> None:
    assert isinstance(byte_tok, Tokenizer)
    assert byte_tok.name == "bytes-v1" and load_tokenizer("bytes-v1") is byte_tok
    assert (byte_tok.vocab_size, byte_tok.pad_id, byte_tok.newline_id) == (BYTES_V1_SIZE, 256, 10)
    assert byte_tok.vocabulary_digest() == BYTES_V1_DIGEST


def test_bytes_v1_ids_are_utf8_bytes(byte_tok) -> None:
    assert byte_tok.encode("A\n") == [65, 10]
    assert byte_tok.encode("é€") == list("é€".encode())
    assert byte_tok.encode("") == [] and byte_tok.decode([]) == ""


def _random_unicode(rng: np.random.Generator, length: int) -> str:
    # Mix ASCII, whitespace, Latin/CJK/emoji planes; surrogates cannot be UTF-8 encoded.
    ranges = [(0x00, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    chars = []
    for _ in range(length):
        low, high = ranges[rng.integers(len(ranges))]
        chars.append(chr(int(rng.integers(low, high + 1))))
    return "".join(chars)


def test_bytes_v1_round_trips_arbitrary_unicode(byte_tok) -> None:
    fixed = [
        "510(k) SUMMARY\nDevice: Cardio Stent X.",
        "  tabs\tand\r\nCRLF  ",
        "\x00\x7f",
        "naïve café – “quotes”",
        "東京タワー",
        "🎉👩‍👩‍👧 flags 🇫🇷",
        "\ufeffBOM",
        "\U0010ffff",
    ]
    rng = np.random.default_rng(0)
    texts = fixed + [_random_unicode(rng, int(rng.integers(1, 60))) for _ in range(300)]
    for text in texts:
        ids = byte_tok.encode(text)
        assert all(0 <= i < 256 for i in ids)
        assert byte_tok.decode(ids) == text


def test_bytes_v1_decode_replaces_broken_characters_and_drops_specials(byte_tok) -> None:
    euro = list("€".encode())  # three bytes
    assert byte_tok.decode(euro[:2] + [65]) == "\ufffdA"
    assert byte_tok.decode([byte_tok.pad_id, 72, byte_tok.pad_id, 105]) == "Hi"
    with pytest.raises(ValueError, match=f"token id {BYTES_V1_SIZE}"):
        byte_tok.decode([65, BYTES_V1_SIZE])
    with pytest.raises(ValueError, match="token id -1"):
        byte_tok.decode([-1])


def test_unknown_byte_spec(byte_tok) -> None:
    with pytest.raises(ValueError, match=r"'bytes-v9'.*bytes-v1"):
        load_tokenizer("bytes-v9")
