"""Hugging Face ``tokenizer.json`` files behind the ``Tokenizer`` protocol, from local disk only.

Owns where a tokenizer spec ("gpt2", "EleutherAI/gpt-neox-20b", or a directory) is looked up and how
the newline and pad ids are chosen. Tested by ``tests/test_hf_tokenizer.py`` on small tokenizer.json
fixtures (a word-level one and a byte-level BPE one shaped like GPT-2's).
"""

from __future__ import annotations

import os
from pathlib import Path

from tokenizers import Tokenizer as _RustTokenizer

from .detokenize import clean_up_tokenization, cleans_up_spaces

TOKENIZER_FILE = "tokenizer.json"

# How each tokenizer family spells "\n" and " " as a single vocabulary entry: GPT-2/NeoX byte-level
# BPE maps bytes to printable stand-ins ("Ċ" = 0x0A, "Ġ" = 0x20); SentencePiece byte fallback uses
# "<0x0A>"; plain vocabularies use the character itself.
_NEWLINE_SPELLINGS = ("\n", "Ċ", "<0x0A>")
_SPACE_SPELLINGS = (" ", "Ġ", "▁")
_PAD_SPELLINGS = ("<pad>", "[PAD]", "<|padding|>", "<|pad|>")


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` with the protocol's fields.

    ``encode`` adds no special tokens (no BOS/EOS): prompts, truncation windows and prefixes are
    all counted the same way, and the engine owns any BOS a model needs. ``decode`` skips special
    tokens, as the paper's truncation does (``skip_special_tokens=True``), then applies Hugging
    Face's ``clean_up_tokenization`` when the tokenizer's config asks for it (``detokenize.py``).
    """

    def __init__(self, name: str, tokenizer: _RustTokenizer, source: Path | None = None) -> None:
        self.name = name
        self.source = source
        self._tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.newline_id = _newline_id(tokenizer, name)
        self.pad_id = _pad_id(tokenizer)
        self.eos_id = _eos_id(tokenizer)
        self.prepended_specials = _prepended_specials(tokenizer)
        self.clean_up_spaces = cleans_up_spaces(source.parent if source is not None else None)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        text = self._tok.decode(list(ids), skip_special_tokens=True)
        return clean_up_tokenization(text) if self.clean_up_spaces else text


def _single_token(tok: _RustTokenizer, spellings: tuple[str, ...], text: str) -> int | None:
    for spelling in spellings:
        token_id = tok.token_to_id(spelling)
        if token_id is not None:
            return token_id
    ids = tok.encode(text, add_special_tokens=False).ids
    return ids[0] if len(ids) == 1 else None


def _newline_id(tok: _RustTokenizer, name: str) -> int:
    token_id = _single_token(tok, _NEWLINE_SPELLINGS, "\n")
    if token_id is None:
        raise ValueError(
            f"tokenizer {name!r}: no single token for '\\n' (tried {list(_NEWLINE_SPELLINGS)} and "
            "encoding '\\n'); generation could not stop at a newline"
        )
    return token_id


def _prepended_specials(tok: _RustTokenizer) -> int:
    """How many special tokens encoding with ``add_special_tokens=True`` puts in front (a Llama
    BOS: 1; GPT-2 and NeoX byte-level BPE: 0). The paper's truncation counted them."""
    mask = tok.encode("a", add_special_tokens=True).special_tokens_mask
    lead = 0
    while lead < len(mask) and mask[lead]:
        lead += 1
    return lead


_EOS_SPELLINGS = ("<|endoftext|>", "</s>", "<eos>")


def _eos_id(tok: _RustTokenizer) -> int | None:
    """The end-of-text id Hugging Face ``generate`` stops at, when the vocabulary has one."""
    for spelling in _EOS_SPELLINGS:
        token_id = tok.token_to_id(spelling)
        if token_id is not None:
            return token_id
    return None


def _pad_id(tok: _RustTokenizer) -> int:
    """The pad id only fills batch slots that the mask hides, so any valid id is correct; we still
    pick the paper harness's choice where it applies: an explicit padding config or pad token if the
    tokenizer has one, else the single-space token (GPT-2: 220, what the hazy models pad with),
    else id 0."""
    if tok.padding is not None and tok.padding.get("pad_id") is not None:
        return int(tok.padding["pad_id"])
    for spelling in _PAD_SPELLINGS:
        token_id = tok.token_to_id(spelling)
        if token_id is not None:
            return token_id
    space_id = _single_token(tok, _SPACE_SPELLINGS, " ")
    return space_id if space_id is not None else 0


def candidate_dirs(spec: str) -> list[Path]:
    """Every directory searched for ``spec``'s tokenizer.json, in order."""
    candidates: list[Path] = []
    as_path = Path(spec).expanduser()
    if as_path.is_absolute() or spec.startswith("."):
        candidates.append(as_path)
    if root := os.environ.get("TWICE_TOKENIZER_DIR"):
        candidates.append(Path(root) / spec)
    hub = _hub_cache()
    repo_dir = hub / ("models--" + spec.replace("/", "--"))
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        candidates.append(repo_dir / "snapshots" / ref.read_text().strip())
    snapshots = repo_dir / "snapshots"
    if snapshots.is_dir():
        candidates.extend(sorted(p for p in snapshots.iterdir() if p.is_dir()))
    elif not ref.is_file():
        candidates.append(snapshots / "*")  # named in the error message only
    return candidates


def _hub_cache() -> Path:
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache)
    if home := os.environ.get("HF_HOME"):
        return Path(home) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def load_hf_tokenizer(spec: str) -> HFTokenizer:
    """Load ``spec``'s tokenizer.json from disk; never downloads."""
    if not spec or not spec.strip():
        raise ValueError(f"tokenizer spec must be a non-empty string, got {spec!r}")
    looked: list[str] = []
    for directory in candidate_dirs(spec):
        path = directory / TOKENIZER_FILE
        looked.append(str(path))
        if path.is_file():
            return HFTokenizer(spec, _RustTokenizer.from_file(str(path)), source=path)
    raise FileNotFoundError(
        f"tokenizer {spec!r}: no {TOKENIZER_FILE} found; looked at: {', '.join(looked)}. "
        "Set TWICE_TOKENIZER_DIR=<dir> with <dir>/<spec>/tokenizer.json, or place the model in the "
        "Hugging Face cache (HF_HUB_CACHE / HF_HOME)."
    )
