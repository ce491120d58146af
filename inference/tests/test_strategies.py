"""Strategy registry, strict parameter parsing and the shared prompt layouts."""

from __future__ import annotations

import pytest

from twice_inference.protocols import StrategySpec
from twice_inference.tasks.strategies import (
    STRATEGY_VERSIONS,
    PromptParts,
    SolvedParts,
    parse_strategy,
    render_prompt,
)

DOC = PromptParts(
    context="a b .",
    query="city :",
    question="information about city .",
    jrt_lead="information about city .",
)
BARE = PromptParts(context="k1 v1 k2 v2", query="k1")


def spec(name: str, **params) -> StrategySpec:
    return parse_strategy(name, STRATEGY_VERSIONS[name], params)


def shot(k: int) -> SolvedParts:
    return SolvedParts(PromptParts(context=f"k{k} v{k}", query=f"k{k}", question="unused"), f"v{k}")


def test_versions() -> None:
    assert STRATEGY_VERSIONS == {
        "default": 1,
        "jrt_prompt": 1,
        "question_first": 1,
        "jrt_question_first": 1,
        "few_shot": 1,
        "jrt_rnn_left_pad": 1,
        "jrt_rnn_read2x": 1,
        "jrt_rnn_iterate": 1,
    }


def test_parse_fills_defaults() -> None:
    assert parse_strategy("jrt_prompt", 1, None) == StrategySpec("jrt_prompt", 1, {"repeats": 2})
    assert parse_strategy("few_shot", 1, {}).params == {"shots": 2}
    assert parse_strategy("few_shot", 1, {"shots": 5}).params == {"shots": 5}
    assert parse_strategy("default", 1, {}).params == {}


def test_parse_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'jrt'; known: \['default'"):
        parse_strategy("jrt", 1, {})
    with pytest.raises(
        ValueError, match="version 2 requested, but this worker implements version 1"
    ):
        parse_strategy("jrt_prompt", 2, {})
    with pytest.raises(
        ValueError, match=r"repeats: Input should be greater than or equal to 2 \(got 1\)"
    ):
        parse_strategy("jrt_prompt", 1, {"repeats": 1})
    with pytest.raises(ValueError, match=r"repeats: Input should be a valid integer \(got '3'\)"):
        parse_strategy("jrt_prompt", 1, {"repeats": "3"})
    with pytest.raises(ValueError, match=r"shots: Input should be greater than or equal to 1"):
        parse_strategy("few_shot", 1, {"shots": 0})
    with pytest.raises(
        ValueError, match=r"'default' params: repeats: Extra inputs are not permitted"
    ):
        parse_strategy("default", 1, {"repeats": 2})
    with pytest.raises(ValueError, match=r"reps: Extra inputs"):
        parse_strategy("jrt_prompt", 1, {"reps": 2})


def test_default_layout() -> None:
    assert render_prompt(spec("default"), DOC, "t") == "a b . city :"


def test_jrt_layout_matches_the_paper() -> None:
    assert render_prompt(spec("jrt_prompt"), DOC, "t") == (
        "information about city . a b .\na b . city :"
    )
    assert render_prompt(spec("jrt_prompt", repeats=3), DOC, "t") == (
        "information about city . a b .\na b .\na b . city :"
    )
    # Without a lead the bare context repeats, as zoology's MQAR num_passes does.
    assert render_prompt(spec("jrt_prompt"), BARE, "t") == "k1 v1 k2 v2\nk1 v1 k2 v2 k1"


def test_question_first_layout() -> None:
    assert render_prompt(spec("question_first"), DOC, "t") == (
        "information about city . a b . city :"
    )
    with pytest.raises(
        ValueError, match="'question_first' needs a question, and task 'sd' has none"
    ):
        render_prompt(spec("question_first"), BARE, "sd")


def test_few_shot_layout() -> None:
    assert render_prompt(spec("few_shot", shots=2), BARE, "t", shot) == (
        "k0 v0 k0 v0\nk1 v1 k1 v1\nk1 v1 k2 v2 k1"
    )
    with pytest.raises(ValueError, match="'few_shot' is not available for task 't'"):
        render_prompt(spec("few_shot"), BARE, "t")


def test_jrt_rnn_modes_reuse_the_prompt_layouts() -> None:
    for parts in (DOC, BARE):
        assert render_prompt(spec("jrt_rnn_left_pad"), parts, "t") == render_prompt(
            spec("default"), parts, "t"
        )
        assert render_prompt(spec("jrt_rnn_iterate"), parts, "t") == render_prompt(
            spec("default"), parts, "t"
        )
        assert render_prompt(spec("jrt_rnn_read2x"), parts, "t") == render_prompt(
            spec("jrt_prompt"), parts, "t"
        )


def test_render_validates_unparsed_specs() -> None:
    with pytest.raises(ValueError, match="repeats"):
        render_prompt(StrategySpec("jrt_prompt", 1, {"repeats": 0}), BARE, "t")
    # An unparsed spec with no params gets the same default as a parsed one.
    assert render_prompt(StrategySpec("jrt_prompt", 1), BARE, "t") == render_prompt(
        spec("jrt_prompt"), BARE, "t"
    )


def test_jrt_question_first_puts_the_question_before_the_copies() -> None:
    parts = PromptParts(context="k1 v1 k2 v2", query="k2", question="k2 ?", jrt_lead=None)
    assert (
        render_prompt(spec("jrt_question_first"), parts, "mqar")
        == "k2 ? k1 v1 k2 v2\nk1 v1 k2 v2 k2"
    )
    three = render_prompt(spec("jrt_question_first", repeats=3), parts, "mqar")
    assert three == "k2 ? k1 v1 k2 v2\nk1 v1 k2 v2\nk1 v1 k2 v2 k2"
    # no question (set disjointness): JRT-Prompt's layout
    bare = PromptParts(context="e1 e2 | e2 e3", query="|")
    assert render_prompt(spec("jrt_question_first"), bare, "set_disjointness") == render_prompt(
        spec("jrt_prompt"), bare, "set_disjointness"
    )
