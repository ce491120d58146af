"""The text clean-up Hugging Face ``decode`` applies after joining tokens.

transformers 4.42 (the version the paper's harness pins) runs ``clean_up_tokenization`` inside
``decode`` whenever the tokenizer's ``clean_up_tokenization_spaces`` is on, which is its default
and what the GPT-2 and GPT-NeoX tokenizers use. It removes the space before ". ? ! ," and before the
English contractions, so both the paper's truncated windows (decoded back to text) and its
predictions went through it. A tokenizer whose ``tokenizer_config.json`` turns it off (Llama-style
SentencePiece ones usually do) is decoded plainly. Tested by ``tests/test_detokenize.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

# Order matters (" ' " before " 's"): these are applied one after another, as transformers does.
_REPLACEMENTS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def clean_up_tokenization(text: str) -> str:
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    return text


def cleans_up_spaces(tokenizer_dir: Path | None) -> bool:
    """``clean_up_tokenization_spaces`` from ``tokenizer_config.json`` beside tokenizer.json, else
    transformers 4.42's default (True)."""
    if tokenizer_dir is None:
        return True
    config = tokenizer_dir / "tokenizer_config.json"
    if not config.is_file():
        return True
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get(
            "clean_up_tokenization_spaces", True
        )
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"{config}: not a JSON object ({error})") from None
    if not isinstance(value, bool):
        raise ValueError(f"{config}: clean_up_tokenization_spaces must be a boolean, got {value!r}")
    return value
