"""Cutting a long document to a token window around its answer (the paper's ``--cutting_context``).

Follows the released ``truncate_context`` (docs/protocol.md, Truncation): the document is stripped
and tokenized with the evaluated model's tokenizer; the anchor is the earliest case-insensitive
match of any anchor string; its character offset becomes a token offset by tokenizing the prefix;
the window starts ``budget // 2`` tokens before it (never before 0) and runs ``budget`` tokens,
capped at the document end. Like the released code (and the paper's wording) the window does NOT
slide left near the end, so an anchor in the last ``budget // 2`` tokens yields a shorter window. No
anchors: the first ``budget`` tokens. The window is decoded back to text.

As the released code, positions are counted with the special tokens the tokenizer prepends
(``batch_encode_plus`` adds them): for GLA's Llama-style tokenizer the BOS is one of the first
window's ``budget`` tokens and is dropped when decoding, so that window holds ``budget - 1`` real
tokens. GPT-2 and NeoX prepend nothing.

When anchors are given but none occurs, the released code tokenizes ``context[:-1]`` and so
centres the window on the document end, where the answer may be absent (the paper says the span is
ensured present; the code does not check). We take that same window and return
``anchor_found=False`` so the task marks the example and reports can count it.

Docs whose anchor is empty or one character long are skipped by the paper's code; ``usable_anchors``
is that rule, applied by the tasks, which count the skips. Tested by ``tests/test_truncation.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..protocols import Tokenizer


@dataclass(frozen=True)
class TruncationResult:
    text: str  # the decoded window
    anchor_found: bool  # True only when anchors were given and one matched
    start_token: int  # window = doc_tokens[start_token:end_token]
    end_token: int
    doc_tokens: int  # length of the whole (stripped) document in tokens
    anchor_token: int | None  # token offset of the anchor match, None when not found / no anchors


def usable_anchors(anchors: list[str]) -> bool:
    """The paper's skip rule: a doc is dropped if ANY anchor is empty or at most 1 character."""
    return all(len(anchor) > 1 for anchor in anchors)


def earliest_match(text: str, anchors: list[str]) -> int | None:
    """Character offset of the earliest case-insensitive literal match of any anchor."""
    positions = [
        match.start()
        for anchor in anchors
        if (match := re.search(re.escape(anchor), text, re.IGNORECASE)) is not None
    ]
    return min(positions) if positions else None


def truncate_context(
    text: str, anchors: list[str], tokenizer: Tokenizer, budget: int = 950
) -> TruncationResult:
    if budget < 1:
        raise ValueError(f"budget must be >= 1 token, got {budget}")
    context = text.strip()
    doc_ids = tokenizer.encode(context)
    # Special tokens the released tokenization put in front (a BOS), counted as positions.
    lead = getattr(tokenizer, "prepended_specials", 0)

    anchor_char = earliest_match(context, anchors) if anchors else None
    anchor_token = None if anchor_char is None else len(tokenizer.encode(context[:anchor_char]))

    if anchor_token is not None:
        centre = lead + anchor_token
    elif anchors:
        centre = lead + len(tokenizer.encode(context[:-1]))  # the released code's document end
    else:
        centre = 0
    start = max(0, centre - budget // 2)
    end = min(lead + len(doc_ids), start + budget)
    # back to positions among the document's own tokens (a special in the window decodes to "")
    real_start, real_end = max(0, start - lead), max(0, end - lead)
    return TruncationResult(
        text=tokenizer.decode(doc_ids[real_start:real_end]),
        anchor_found=anchor_token is not None,
        start_token=real_start,
        end_token=real_end,
        doc_tokens=len(doc_ids),
        anchor_token=anchor_token,
    )
