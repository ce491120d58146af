"""Loading tokenizer.json from TWICE_TOKENIZER_DIR or the HF cache layout; the protocol's ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from twice_inference.hf_tokenizer import HFTokenizer, load_hf_tokenizer
from twice_inference.protocols import Tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "recall"


@pytest.fixture(autouse=True)
def _no_real_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TWICE_TOKENIZER_DIR", str(FIXTURES))


def test_byte_level_bpe_is_lossless_with_gpt2_style_ids() -> None:
    tok = load_hf_tokenizer("bytebpe")
    assert isinstance(tok, Tokenizer) and tok.vocab_size == 400
    raw = tok._tok  # the rust tokenizer, to name the GPT-2 spellings of newline and space
    assert tok.newline_id == raw.token_to_id("Ċ") and tok.pad_id == raw.token_to_id("Ġ")
    text = "Applicant: Acme Medical Inc.\n  510(k) é"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("\n") == [tok.newline_id]


def test_no_special_tokens_are_added_and_decode_skips_them() -> None:
    tok = load_hf_tokenizer("bytebpe")
    eot = tok._tok.token_to_id("<|endoftext|>")
    assert eot not in tok.encode("Warsaw")
    assert tok.decode([eot, *tok.encode("Warsaw")]) == "Warsaw"


def test_word_level_fixture_uses_its_pad_token() -> None:
    tok = load_hf_tokenizer("word")
    assert (tok.pad_id, tok.newline_id) == (1, 2)
    assert tok.encode("w1 ANSWER\nw2") == [11, 5, 2, 12]


def test_hf_cache_layout_follows_refs_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWICE_TOKENIZER_DIR")
    repo = tmp_path / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    shutil.copy(FIXTURES / "bytebpe" / "tokenizer.json", snapshot / "tokenizer.json")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    tok = load_hf_tokenizer("org/tiny")
    assert (
        isinstance(tok, HFTokenizer)
        and tok.source == snapshot / "tokenizer.json"
        and tok.name == "org/tiny"
    )


def test_absolute_directory_spec(tmp_path: Path) -> None:
    assert load_hf_tokenizer(str(FIXTURES / "word")).vocab_size == 70


def test_missing_tokenizer_names_every_path_looked_at(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_hf_tokenizer("openai-community/gpt2")
    message = str(error.value)
    assert str(FIXTURES / "openai-community" / "gpt2" / "tokenizer.json") in message
    assert str(tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots") in message
    with pytest.raises(ValueError, match="non-empty"):
        load_hf_tokenizer(" ")


def test_tokenizers_module_dispatches_hf_specs_here() -> None:
    from twice_inference.tokenizers import load_tokenizer

    assert isinstance(load_tokenizer("bytebpe"), HFTokenizer)
