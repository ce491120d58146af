"""Each task's prompts against strings written out by hand from the released ``doc_to_text``."""

from __future__ import annotations

import pytest

from twice_inference.tasks import templates as t

FDA = {
    "key": "applicant",
    "value": "Acme Medical Inc",
    "text": "510(k) SUMMARY\nDevice: Cardio Stent X.\nApplicant: Acme Medical "
    "Inc.\nIntended use: to support coronary arteries.\n",
}
FDA_BODY = (
    "510(k) SUMMARY\nDevice: Cardio Stent X.\nApplicant: Acme Medical "
    "Inc.\nIntended use: to support coronary arteries."
)


def test_fda_default_and_twice() -> None:
    assert t.fda_default(FDA) == FDA_BODY + " Applicant:"
    assert (
        t.fda_repeated(FDA, 2)
        == "Information about Applicant. " + FDA_BODY + "\n" + FDA_BODY + " Applicant:"
    )


def test_fda_repeats_three_times_and_question_first() -> None:
    assert t.fda_repeated(FDA, 3) == (
        "Information about Applicant. "
        + FDA_BODY
        + "\n"
        + FDA_BODY
        + "\n"
        + FDA_BODY
        + " Applicant:"
    )
    assert (
        t.TEMPLATES["fda"].question_first(FDA)
        == "Information about Applicant. " + FDA_BODY + " Applicant:"
    )


def test_fda_drops_trailing_key_prompts_case_insensitively() -> None:
    doc = {"key": "510(k) number", "text": "Device name: Flow Meter.\n510(K) Number:510(k) number:"}
    assert t.fda_default(doc) == "Device name: Flow Meter. 510(k) number:"
    assert t.fda_repeated(doc) == (
        "Information about 510(k) number. Device name: Flow Meter.\nDevice name: Flow "
        "Meter. 510(k) number:"
    )


SWDE = {
    "key": "isbn 13",
    "text": "The C Programming Language\nISBN 13: 978-0131103627\nPublisher: Prentice "
    "Hall\nisbn 13:"
    "Summary of information above... isbn 13:",
}


def test_swde_cuts_the_summary_prompt_and_trailing_key() -> None:
    assert t.swde_default(SWDE) == (
        "The C Programming Language\nISBN 13: 978-0131103627\nPublisher: Prentice Hall. Isbn 13:"
    )
    assert t.swde_repeated(SWDE) == (
        "Information about Isbn 13. The C Programming Language\nISBN 13: "
        "978-0131103627\nPublisher: Prentice Hall."
        "\nThe C Programming Language\nISBN 13: 978-0131103627\nPublisher: Prentice Hall. Isbn 13:"
    )


def test_swde_default_always_appends_a_period_after_stripping_one() -> None:
    doc = {"key": "director", "text": "Director: Lana Wachowski\nRuntime: 136 min.\n\n"}
    assert t.swde_default(doc) == "Director: Lana Wachowski\nRuntime: 136 min. Director:"
    assert t.swde_repeated(doc) == (
        "Information about Director. Director: Lana Wachowski\nRuntime: 136 min."
        "\nDirector: Lana Wachowski\nRuntime: 136 min. Director:"
    )


SQUAD = {
    "context": "Warsaw is the capital of Poland. Question: What is the capital of Poland?",
    "question": "What is the capital of Poland?",
    "text": " Warsaw is the capital of Poland. The capital of Poland is ",
    "value": "Warsaw",
}


def test_squad_default_twice_and_question_first() -> None:
    assert t.squad_default(SQUAD) == "Warsaw is the capital of Poland. The capital of Poland is"
    # the raw passage keeps the space left before "Question:"
    assert t.squad_repeated(SQUAD) == (
        "What is the capital of Poland? Warsaw is the capital of Poland. \n"
        "Warsaw is the capital of Poland. The capital of Poland is"
    )
    assert t.squad_repeated(SQUAD, 3) == (
        "What is the capital of Poland? Warsaw is the capital of Poland. \nWarsaw is the "
        "capital of Poland. \n"
        "Warsaw is the capital of Poland. The capital of Poland is"
    )
    assert t.squad_question_first(SQUAD) == (
        "What is the capital of Poland? Warsaw is the capital of Poland. The capital of Poland is"
    )


NQ = {
    "context": " The Eiffel Tower is in Paris. It was completed in 1889. the eiffel "
    "tower was completed in",
    "question": "The Eiffel Tower was completed in ",
    "orig_question": "when was the eiffel tower completed:",
}


def test_nq_default_removes_the_trailing_question_only_case_sensitively() -> None:
    # the released default uses a single case-sensitive endswith, so the lower-case copy stays
    assert t.nq_default(NQ) == (
        "The Eiffel Tower is in Paris. It was completed in 1889. the eiffel tower was "
        "completed in. "
        "The Eiffel Tower was completed in"
    )
    exact_copy = {**NQ, "context": "It was completed in 1889. The Eiffel Tower was completed in"}
    assert t.nq_default(exact_copy) == "It was completed in 1889. The Eiffel Tower was completed in"


def test_nq_twice_removes_any_case_and_strips_the_colon_of_the_question() -> None:
    body = "The Eiffel Tower is in Paris. It was completed in 1889."
    assert t.nq_repeated(NQ) == (
        "when was the eiffel tower completed "
        + body
        + "\n"
        + body
        + " The Eiffel Tower was completed in"
    )
    assert t.TEMPLATES["nq"].question_first(NQ) == (
        "when was the eiffel tower completed " + body + " The Eiffel Tower was completed in"
    )


TRIVIA = {
    "context": "[DOC] [TLE] Kiribati [PAR] Kiribati is an island nation. Its capital is "
    "South Tarawa. "
    "The capital of Kiribati is",
    "question": "The capital of Kiribati is",
    "orig_question": "Capital of Kiribati:",
}


def test_triviaqa_removes_markers_and_keeps_the_colon() -> None:
    body = "Kiribati  Kiribati is an island nation. Its capital is South Tarawa"
    assert t.triviaqa_default(TRIVIA) == body + ". The capital of Kiribati is"
    assert t.triviaqa_repeated(TRIVIA) == (
        "Capital of Kiribati: " + body + ".\n" + body + ". The capital of Kiribati is"
    )


DROP = {
    "context": "The Bears scored 14 points. The Lions scored 7 points...",
    "question": "The number of points the Bears scored was",
    "orig_question": "How many points did the Bears score?",
}


def test_drop_default_and_twice() -> None:
    assert t.drop_default(DROP) == (
        "The Bears scored 14 points. The Lions scored 7 points. The number of points the "
        "Bears scored was"
    )
    assert t.drop_repeated(DROP) == (
        "How many points did the Bears score? The Bears scored 14 points. The Lions "
        "scored 7 points."
        "\nThe Bears scored 14 points. The Lions scored 7 points. The number of points "
        "the Bears scored was"
    )


def test_few_shot_layout_matches_lm_eval() -> None:
    prompt = t.few_shot_prompt([("A is", " 1"), ("B is", "2")], "C is")
    assert prompt == "A is 1\n\nB is 2\n\nC is"


@pytest.mark.parametrize("repeats", [0, -1])
def test_repeats_must_be_positive(repeats: int) -> None:
    with pytest.raises(ValueError, match="repeats"):
        t.fda_repeated(FDA, repeats)
