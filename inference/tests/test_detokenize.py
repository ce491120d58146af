"""Hugging Face decode's clean-up (transformers 4.42, ``clean_up_tokenization_spaces``), which the
paper's windows and predictions went through (issue 15, defect 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from twice_inference.detokenize import clean_up_tokenization
from twice_inference.hf_tokenizer import load_hf_tokenizer
from twice_inference.tasks.truncation import truncate_context

FIXTURES = Path(__file__).parent / "fixtures" / "recall"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Acme Inc . , a firm", "Acme Inc., a firm"),
        ("It 's here ! Is it ?", "It's here! Is it?"),
        # there is no " 't" rule: only "do n't" style splits lose their space
        ("we 've , they 're , I 'm , don 't", "we've, they're, I'm, don 't"),
        ("do n't", "don't"),
        ("rock ' n ' roll", "rock'n'roll"),
        ("no change: 3.5, a.b", "no change: 3.5, a.b"),
    ],
)
def test_clean_up_golden(raw: str, clean: str) -> None:
    assert clean_up_tokenization(raw) == clean


@pytest.fixture
def bpe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "bytebpe"
    shutil.copytree(FIXTURES / "bytebpe", target)
    monkeypatch.setenv("TWICE_TOKENIZER_DIR", str(tmp_path))
    return target


def test_gpt2_style_decode_cleans_windows_and_predictions(bpe_dir: Path) -> None:
    tok = load_hf_tokenizer("bytebpe")
    text = "Device name : Acme . It 's approved , see 510 ."
    assert tok.decode(tok.encode(text)) == "Device name : Acme. It's approved, see 510."
    cut = truncate_context(text, ["acme"], tok, budget=1000)
    assert cut.text == "Device name : Acme. It's approved, see 510."


def test_tokenizer_config_can_turn_it_off(bpe_dir: Path) -> None:
    (bpe_dir / "tokenizer_config.json").write_text(
        json.dumps({"clean_up_tokenization_spaces": False})
    )
    tok = load_hf_tokenizer("bytebpe")
    text = "Acme . It 's"
    assert tok.decode(tok.encode(text)) == text


def test_bad_tokenizer_config_is_named(bpe_dir: Path) -> None:
    (bpe_dir / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": 1}))
    with pytest.raises(ValueError, match="clean_up_tokenization_spaces"):
        load_hf_tokenizer("bytebpe")
