"""Scorers for generated answers, versioned because a scorer's version is part of every cell key.
``contains`` is the paper's rule verbatim (docs/protocol.md, Scoring); ``exact`` is for single-word
synthetic answers; ``none`` belongs to measurement tasks (prefill_throughput), which score nothing,
so calling it is a bug. Tested by ``tests/test_scoring.py`` and ``tests/test_throughput.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SCORER_VERSIONS: dict[str, int] = {"contains": 1, "exact": 1, "none": 1}


def _check_golds(golds: list[str]) -> None:
    # An empty gold would make `contains` match every prediction; the paper drops such docs
    # before scoring, so reaching here with one is a data bug, not a zero.
    if not golds:
        raise ValueError("golds is empty: every example needs at least one gold answer")
    for gold in golds:
        if not isinstance(gold, str) or gold == "":
            raise ValueError(f"gold answers must be non-empty strings, got {gold!r}")


def contains(prediction: str, golds: list[str]) -> float:
    """1.0 if any gold occurs in the prediction as a case-insensitive literal substring.

    No whitespace or punctuation normalisation, exactly as the paper's ``contains_score``.
    Beware: a gold that is a prefix of another word (``v9`` in ``v90``) counts as found.
    """
    _check_golds(golds)
    return float(any(re.search(re.escape(g), prediction, re.IGNORECASE) for g in golds))


def exact(prediction: str, golds: list[str]) -> float:
    """1.0 if the prediction, stripped of surrounding whitespace, equals a gold (case-sensitive)."""
    _check_golds(golds)
    stripped = prediction.strip()
    return float(any(stripped == g for g in golds))


def none(prediction: str, golds: list[str]) -> float:
    """The scorer of measurement tasks. They produce no predictions, so reaching here means a
    shard took the recall path by mistake; a made-up score would be recorded as real."""
    raise RuntimeError(
        "scorer 'none' belongs to measurement tasks, which have nothing to score; "
        f"it was called with prediction {prediction!r:.80}"
    )


SCORERS: dict[str, Callable[[str, list[str]], float]] = {
    "contains": contains,
    "exact": exact,
    "none": none,
}


def get_scorer(name: str) -> Callable[[str, list[str]], float]:
    try:
        return SCORERS[name]
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {sorted(SCORERS)}") from None
