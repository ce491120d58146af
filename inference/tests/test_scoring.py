"""`contains` (the paper's rule) and `exact` scorers."""

from __future__ import annotations

import pytest

from twice_inference.tasks.scoring import SCORER_VERSIONS, contains, exact, get_scorer


def test_contains_is_case_insensitive_substring() -> None:
    assert contains("The answer is PARIS, France", ["paris"]) == 1.0
    assert contains("the answer is rome", ["Paris"]) == 0.0


def test_contains_treats_regex_metacharacters_literally() -> None:
    assert contains("roughly 3.5 (approx) meters", ["3.5 (approx)"]) == 1.0
    assert contains("roughly 345 approx meters", ["3.5 (approx)"]) == 0.0  # '.' is not a wildcard
    assert contains("a+b", ["a+b"]) == 1.0
    assert contains("aab", ["a+b"]) == 0.0


def test_contains_any_gold_counts() -> None:
    assert contains("in 1912 it sank", ["nineteen twelve", "1912"]) == 1.0
    assert contains("in 1913 it sank", ["nineteen twelve", "1912"]) == 0.0


def test_contains_does_no_other_normalisation() -> None:
    assert contains("new york", ["new  york"]) == 0.0  # whitespace is not collapsed
    assert contains("u.s.a", ["usa"]) == 0.0  # punctuation is not stripped
    assert contains("v90", ["v9"]) == 1.0  # the paper's substring rule, prefix hazard included


def test_empty_prediction() -> None:
    assert contains("", ["x"]) == 0.0
    assert exact("", ["x"]) == 0.0
    assert exact("   ", ["x"]) == 0.0


def test_exact_strips_whitespace_and_is_case_sensitive() -> None:
    assert exact("  v9 \n", ["v9"]) == 1.0
    assert exact("V9", ["v9"]) == 0.0
    assert exact("v90", ["v9"]) == 0.0
    assert exact("v9 k3", ["v9"]) == 0.0
    assert exact("e4", ["e3", "e4"]) == 1.0


@pytest.mark.parametrize("scorer", [contains, exact])
def test_invalid_golds_are_errors(scorer) -> None:
    with pytest.raises(ValueError, match="golds is empty"):
        scorer("x", [])
    with pytest.raises(ValueError, match="non-empty strings, got ''"):
        scorer("x", ["a", ""])


def test_registry() -> None:
    assert SCORER_VERSIONS == {"contains": 1, "exact": 1, "none": 1}
    assert get_scorer("contains") is contains
    with pytest.raises(ValueError, match=r"unknown scorer 'f1'.*contains"):
        get_scorer("f1")
