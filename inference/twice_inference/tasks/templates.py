"""The exact prompt strings of the six recall tasks (the released ``doc_to_text``; see
docs/protocol.md).

Each task has three renderings of one (already truncated) doc: ``default`` (the paper's zero-shot
prompt), ``repeated`` (JRT-Prompt; ``repeats=2`` is the paper's "twice", larger values repeat the
context block more times with the same "\\n" separator) and ``question_first`` (our ablation: the
JRT-Prompt lead-in followed by ONE copy of the context, isolating the effect of re-reading). The
released code's small inconsistencies between a task's default and twice prompts (strip order,
case-sensitive vs case-insensitive removal of a trailing question) are kept on purpose, so our
prompts are byte-identical to the paper's. Tested against hand-written strings in
``tests/test_templates.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

SWDE_SUMMARY_MARKER = "Summary of information above..."
_TRIVIAQA_MARKERS = re.compile(r"\[PAR\]|\[DOC\]|\[TLE\]")


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _repeat(body: str, repeats: int) -> str:
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return "\n".join([body] * repeats)


def _drop_trailing(text: str, suffix: str, case_sensitive_once: bool = False) -> str:
    """Remove a trailing copy of ``suffix`` (the cloze question or "key:") left in the document."""
    if not suffix:
        return text
    if case_sensitive_once:
        return text[: -len(suffix)] if text.endswith(suffix) else text
    while text.lower().endswith(suffix.lower()):
        text = text[: -len(suffix)]
    return text


# --- FDA and SWDE: "<document>. <Key>:" ---------------------------------------------------------


def _key_prompt(doc: Doc, body: str, repeats: int | None) -> str:
    key_label = _upper_first(doc["key"]) + ":"
    if repeats is None:
        return body + " " + key_label
    intro = key_label.strip(":")
    return f"Information about {intro}. " + _repeat(body, repeats) + " " + key_label


def _fda_body(doc: Doc) -> str:
    text = _drop_trailing(doc["text"], doc["key"] + ":")
    body = text.strip("\n").strip(".")
    return body if body.endswith(".") else body + "."


def fda_default(doc: Doc) -> str:
    return _key_prompt(doc, _fda_body(doc), None)


def fda_repeated(doc: Doc, repeats: int = 2) -> str:
    return _key_prompt(doc, _fda_body(doc), repeats)


def swde_document(text: str) -> str:
    """The part of an SWDE ``text`` before its built-in summary prompt (cut before truncation)."""
    return text.split(SWDE_SUMMARY_MARKER)[0]


def _swde_text(doc: Doc) -> str:
    return _drop_trailing(swde_document(doc["text"]), doc["key"] + ":")


def swde_default(doc: Doc) -> str:
    body = _swde_text(doc).strip("\n").strip().strip("\n").strip().strip(".") + "."
    return _key_prompt(doc, body, None)


def _swde_twice_body(doc: Doc) -> str:
    body = _swde_text(doc).strip("\n").strip(".").strip().strip("\n").strip()
    return body if body.endswith(".") else body + "."


def swde_repeated(doc: Doc, repeats: int = 2) -> str:
    return _key_prompt(doc, _swde_twice_body(doc), repeats)


# --- SQuAD: the passage plus cloze stem is already in ``text`` ----------------------------------


def squad_default(doc: Doc) -> str:
    return doc["text"].strip()


def squad_repeated(doc: Doc, repeats: int = 2) -> str:
    # The first copy is the raw (untruncated) passage, the last the truncated passage + cloze stem.
    passage = doc["context"].split("Question:")[0]
    return doc["question"] + " " + _repeat(passage, repeats - 1) + "\n" + doc["text"].strip()


def squad_question_first(doc: Doc) -> str:
    return doc["question"] + " " + doc["text"].strip()


# --- NQ, TriviaQA, DROP: "<context>. <cloze stem>" ----------------------------------------------


def _clean_triviaqa(context: str) -> str:
    return _TRIVIAQA_MARKERS.sub("", context)


def _qa_context(doc: Doc, clean: bool, case_sensitive_once: bool) -> str:
    context = doc["context"].strip()
    if clean:
        context = _clean_triviaqa(context)
    return _drop_trailing(context, doc["question"].strip(), case_sensitive_once)


def _qa_default(doc: Doc, clean: bool = False, case_sensitive_once: bool = False) -> str:
    context = _qa_context(doc, clean, case_sensitive_once)
    return context.strip().strip(".") + ". " + doc["question"].strip()


def _qa_lead(doc: Doc, strip_colon: bool) -> str:
    return doc["orig_question"].strip(":") if strip_colon else doc["orig_question"]


def _qa_prompt(doc: Doc, repeats: int, clean: bool, strip_colon: bool) -> str:
    body = _qa_context(doc, clean, False).strip().strip(".").strip() + "."
    return _qa_lead(doc, strip_colon) + " " + _repeat(body, repeats) + " " + doc["question"].strip()


def nq_default(doc: Doc) -> str:
    # The released NQ default removes a trailing question once and case-sensitively (unlike twice).
    return _qa_default(doc, case_sensitive_once=True)


def nq_repeated(doc: Doc, repeats: int = 2) -> str:
    return _qa_prompt(doc, repeats, clean=False, strip_colon=True)


def triviaqa_default(doc: Doc) -> str:
    return _qa_default(doc, clean=True)


def triviaqa_repeated(doc: Doc, repeats: int = 2) -> str:
    return _qa_prompt(doc, repeats, clean=True, strip_colon=False)


def drop_default(doc: Doc) -> str:
    return _qa_default(doc)


def drop_repeated(doc: Doc, repeats: int = 2) -> str:
    return _qa_prompt(doc, repeats, clean=False, strip_colon=True)


@dataclass(frozen=True)
class TaskTemplates:
    default: Callable[[Doc], str]
    repeated: Callable[[Doc, int], str]
    question_first: Callable[[Doc], str]


TEMPLATES: dict[str, TaskTemplates] = {
    "fda": TaskTemplates(fda_default, fda_repeated, lambda doc: fda_repeated(doc, 1)),
    "swde": TaskTemplates(swde_default, swde_repeated, lambda doc: swde_repeated(doc, 1)),
    "squad": TaskTemplates(squad_default, squad_repeated, squad_question_first),
    "nq": TaskTemplates(nq_default, nq_repeated, lambda doc: nq_repeated(doc, 1)),
    "triviaqa": TaskTemplates(
        triviaqa_default, triviaqa_repeated, lambda doc: triviaqa_repeated(doc, 1)
    ),
    "drop": TaskTemplates(drop_default, drop_repeated, lambda doc: drop_repeated(doc, 1)),
}


def few_shot_prompt(solved: list[tuple[str, str]], prompt: str) -> str:
    """k solved examples ("<default prompt> <answer>") before the query prompt, separated by blank
    lines: the layout of lm-eval's ``fewshot_context``."""
    shots = "".join(f"{shot_prompt} {answer.strip()}\n\n" for shot_prompt, answer in solved)
    return shots + prompt
