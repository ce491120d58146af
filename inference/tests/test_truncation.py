"""Truncation goldens on a word-level tokenizer (one token per word): windows countable by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from twice_inference.hf_tokenizer import load_hf_tokenizer
from twice_inference.tasks.truncation import earliest_match, truncate_context, usable_anchors

FIXTURES = Path(__file__).parent / "fixtures" / "recall"


@pytest.fixture
def words(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TWICE_TOKENIZER_DIR", str(FIXTURES))
    return load_hf_tokenizer("word")


def doc_with_answer_at(position: int, length: int = 20) -> str:
    return " ".join("ANSWER" if i == position else f"w{i}" for i in range(length))


def test_anchor_in_the_middle_centres_the_window(words) -> None:
    cut = truncate_context(doc_with_answer_at(10), ["answer"], words, budget=8)
    # anchor token 10, start 10 - 8 // 2 = 6, end 6 + 8 = 14
    assert (cut.start_token, cut.end_token, cut.anchor_token) == (6, 14, 10)
    assert cut.text == "w6 w7 w8 w9 ANSWER w11 w12 w13"
    assert cut.anchor_found and cut.doc_tokens == 20


def test_anchor_near_the_start_clamps_to_zero(words) -> None:
    cut = truncate_context(doc_with_answer_at(2), ["answer"], words, budget=8)
    assert (cut.start_token, cut.end_token) == (0, 8)
    assert cut.text == "w0 w1 ANSWER w3 w4 w5 w6 w7"


def test_anchor_near_the_end_is_capped_not_shifted(words) -> None:
    # As the spec and released code: the window starts budget // 2 before the anchor and is cut at
    # the document end, so it holds 6 tokens here, not 8.
    cut = truncate_context(doc_with_answer_at(18), ["answer"], words, budget=8)
    assert (cut.start_token, cut.end_token) == (14, 20)
    assert cut.text == "w14 w15 w16 w17 ANSWER w19"


def test_missing_anchor_takes_the_released_end_window_and_says_so(words) -> None:
    # The released code tokenizes context[:-1] ("... w1"): 20 tokens, so the window is centred on
    # the document end: start 20 - 4 = 16, capped at 20.
    cut = truncate_context(doc_with_answer_at(18), ["value"], words, budget=8)
    assert not cut.anchor_found and cut.anchor_token is None
    assert (cut.start_token, cut.end_token) == (16, 20)
    assert cut.text == "w16 w17 ANSWER w19"


class WithBos:
    """``words`` plus one prepended special, as a Llama tokenizer's batch_encode_plus adds."""

    prepended_specials = 1

    def __init__(self, inner) -> None:
        self.inner = inner

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.inner.decode(ids)


def test_prepended_bos_counts_toward_the_window(words) -> None:
    # Released positions: [BOS] w0 .. w19. No anchors: the first 8 positions hold BOS + 7 words.
    cut = truncate_context(doc_with_answer_at(12), [], WithBos(words), budget=8)
    assert (cut.start_token, cut.end_token) == (0, 7)
    assert cut.text == "w0 w1 w2 w3 w4 w5 w6"
    # Anchor at word 10 is position 11 with the BOS: window positions 7..15 = words 6..13.
    cut = truncate_context(doc_with_answer_at(10), ["answer"], WithBos(words), budget=8)
    assert (cut.start_token, cut.end_token) == (6, 14)


def test_no_anchors_takes_the_first_budget_tokens(words) -> None:
    cut = truncate_context(doc_with_answer_at(12), [], words, budget=5)
    assert (cut.start_token, cut.end_token, cut.anchor_found) == (0, 5, False)
    assert cut.text == "w0 w1 w2 w3 w4"


def test_short_document_is_kept_whole(words) -> None:
    cut = truncate_context("w0 w1 ANSWER", ["answer"], words, budget=950)
    assert (cut.start_token, cut.end_token, cut.text) == (0, 3, "w0 w1 ANSWER")


def test_earliest_match_of_any_anchor_wins_case_insensitively(words) -> None:
    text = doc_with_answer_at(10) + " key"
    # "key" is the first anchor listed but occurs last; "Answer" matches "ANSWER" at token 10
    cut = truncate_context(text, ["key", "Answer"], words, budget=4)
    assert (cut.anchor_token, cut.start_token, cut.end_token) == (10, 8, 12)
    assert cut.text == "w8 w9 ANSWER w11"


def test_document_is_stripped_before_offsets_are_taken(words) -> None:
    # leading newlines are tokens for this tokenizer; stripping keeps them out of the window
    cut = truncate_context("\n\n " + doc_with_answer_at(10) + "\n", ["answer"], words, budget=8)
    assert cut.text == "w6 w7 w8 w9 ANSWER w11 w12 w13"


def test_odd_budget_puts_the_larger_half_after_the_anchor(words) -> None:
    cut = truncate_context(doc_with_answer_at(10), ["answer"], words, budget=7)
    assert (cut.start_token, cut.end_token) == (7, 14)


def test_anchor_is_matched_literally_not_as_a_regex() -> None:
    assert earliest_match("xabc a.c", ["a.c"]) == 5
    assert earliest_match("510k then 510(k)", ["510(k)"]) == 10
    assert earliest_match("nothing here", ["absent"]) is None


@pytest.mark.parametrize(
    ("anchors", "usable"),
    [(["ab", "cd"], True), ([], True), (["ab", "B"], False), (["", "abc"], False), (["  "], True)],
)
def test_skip_rule_drops_empty_or_one_character_anchors(anchors: list[str], usable: bool) -> None:
    assert usable_anchors(anchors) is usable


def test_budget_must_be_positive(words) -> None:
    with pytest.raises(ValueError, match="budget"):
        truncate_context("w0", [], words, budget=0)
