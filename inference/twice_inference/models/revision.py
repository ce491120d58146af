"""A model revision (``ModelRef.revision``), parsed once, here, with the formats the TypeScript
contract exports (``contract.REVISION_FORMATS``): ``sha256:<digest>`` (zoo weights),
``random:seed=<n>`` (seeded random weights), ``operator:<op>@v<n>`` (a timed kernel),
``hf:<id>@<ref>`` (a Hugging Face checkpoint in its local layout) and ``folder:<like>@<digest>``
(a spec's checkpoint folder, by content: ``folder.py``). Tested in
``tests/test_registry.py``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..contract import REVISION_FORMATS


class RevisionMismatch(ValueError):
    """The requested revision is malformed, of another kind than the entry's weights, or not the
    one those weights are (a zoo file's digest, a random model's seed, an operator's version)."""


@dataclass(frozen=True)
class Revision:
    kind: str  # a key of REVISION_FORMATS: "zoo", "random", "operator", "hf" or "folder"
    # the format's groups: (digest,), (seed,), (op, version), (id, ref), (like, digest)
    parts: tuple[str, ...]
    text: str


def parse_revision(text: str) -> Revision:
    for kind, pattern in REVISION_FORMATS.items():
        match = re.fullmatch(pattern, text)
        if match:
            return Revision(kind, match.groups(), text)
    forms = ", ".join(f"{kind}: {pattern}" for kind, pattern in REVISION_FORMATS.items())
    raise RevisionMismatch(f"revision {text!r} has none of the known forms ({forms})")


def expect_kind(revision: Revision, kind: str, model: str) -> Revision:
    if revision.kind != kind:
        raise RevisionMismatch(
            f"model {model!r} needs a {kind} revision, got {revision.kind} revision "
            f"{revision.text!r}"
        )
    return revision


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights_digest(revision: Revision, weights: Path, model: str) -> None:
    """A zoo revision names its weights by content: refuse a file with another digest (a retrained
    zoo whose manifest, and so every cell key, was not updated)."""
    (wanted,) = expect_kind(revision, "zoo", model).parts
    actual = sha256_file(weights)
    if actual != wanted:
        raise RevisionMismatch(
            f"zoo model {model!r}: the revision asks for sha256:{wanted}, but {weights} has "
            f"sha256:{actual}; the zoo manifest and the weights disagree"
        )
