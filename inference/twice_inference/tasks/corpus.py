"""Corpora the perplexity task and ``twice bigrams build`` read: a generated language
(``synthetic:<name>``, see language.py) or a local JSONL file of documents, one per line, each
``{"text": "..."}`` (tokenized with the evaluated model's tokenizer) or ``{"ids": [..]}`` (token
ids as they are). Tested by ``tests/test_perplexity.py`` and ``tests/test_bigrams.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..protocols import Tokenizer
from .language import Language, load_language

SYNTHETIC_PREFIX = "synthetic:"


@dataclass(frozen=True)
class CorpusRef:
    """``language`` for a generated corpus, ``path`` for a file (never both)."""

    name: str
    language: Language | None
    path: Path | None


def resolve_corpus(name: str) -> CorpusRef:
    """A relative file path is read under the data root (``TWICE_DATA_DIR``, else the working
    directory) and may not leave it, as the slices' bigram tables are."""
    if name.startswith(SYNTHETIC_PREFIX):
        return CorpusRef(name, load_language(name[len(SYNTHETIC_PREFIX) :]), None)
    candidate = Path(name).expanduser()
    if not candidate.is_absolute():
        root = Path(os.environ.get("TWICE_DATA_DIR", ".")).resolve()
        candidate = (root / candidate).resolve()
        if not candidate.is_relative_to(root):
            raise ValueError(f"corpus {name!r} leaves the data root {root}; name a file under it")
    if not candidate.is_file():
        raise FileNotFoundError(
            f"corpus {name!r}: {candidate} is not a file (a JSONL of {{'text'}} or {{'ids'}} "
            f"documents, or synthetic:<language>)"
        )
    return CorpusRef(name, None, candidate)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def corpus_digest(ref: CorpusRef) -> str:
    if ref.language is not None:
        return ref.language.digest()
    assert ref.path is not None
    return file_digest(ref.path)


def parse_document(line: str, where: str, tokenizer: Tokenizer | None) -> list[int]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(row, dict) or len(row.keys() & {"text", "ids"}) != 1:
        raise ValueError(f"{where}: a document is an object with exactly one of 'text' or 'ids'")
    if "ids" in row:
        ids = row["ids"]
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**32 for i in ids
        ):
            raise ValueError(f"{where}: 'ids' must be a list of integers in [0, 2^32)")
        return ids
    if not isinstance(row["text"], str):
        raise ValueError(f"{where}: 'text' must be a string, got {type(row['text']).__name__}")
    if tokenizer is None:
        raise ValueError(f"{where}: a 'text' document needs a tokenizer (pass --tokenizer)")
    return tokenizer.encode(row["text"])


def file_documents(
    path: Path, tokenizer: Tokenizer | None, start: int = 0, end: int | None = None
) -> Iterator[list[int]]:
    """Documents ``[start, end)`` of a JSONL file, in file order (blank lines are skipped and not
    counted)."""
    index = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if end is not None and index >= end:
                return
            if index >= start:
                yield parse_document(line, f"{path}:{number}", tokenizer)
            index += 1


def count_documents(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())
