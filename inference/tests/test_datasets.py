"""The six recall tasks end to end on fixture rows in each dataset's schema: exact prompts for the
default and JRT-Prompt strategies, the skip rule, truncation, scoring, digests and param checks."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from twice_inference.hf_tokenizer import load_hf_tokenizer
from twice_inference.protocols import StrategySpec
from twice_inference.tasks.datasets import TASK_VERSION, build_dataset_task
from twice_inference.tasks.templates import fda_default

FIXTURES = Path(__file__).parent / "fixtures" / "recall"
DEFAULT = StrategySpec("default", 1)
TWICE = StrategySpec("jrt_prompt", 1, {"repeats": 2})


@pytest.fixture(autouse=True)
def _local_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TWICE_DATA_DIR", str(FIXTURES))
    monkeypatch.setenv("TWICE_TOKENIZER_DIR", str(FIXTURES))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))


@pytest.fixture
def bpe():
    return load_hf_tokenizer("bytebpe")  # lossless byte-level BPE: windows decode to exact text


def prompt(name: str, index: int, strategy: StrategySpec, tokenizer, **params) -> str:
    task = build_dataset_task(name, TASK_VERSION, params)
    (example,) = task.examples(index, index + 1, tokenizer, strategy)
    assert example.prompt_ids == tokenizer.encode(example.prompt_text)
    return example.prompt_text


FDA_BODY = (
    "510(k) SUMMARY\nDevice: Cardio Stent X.\nApplicant: Acme Medical "
    "Inc.\nIntended use: to support coronary arteries."
)
SWDE_BODY = "The Matrix (1999)\nGenre: Action\nDirector: Lana Wachowski\nRuntime: 136 min."
SQUAD_TEXT = (
    "Super Bowl 50 was an American football game. The Denver Broncos (AFC) defeated the "
    "Carolina Panthers. "
    "The NFL team that represented the AFC at Super Bowl 50 was the"
)
SQUAD_PASSAGE = (
    "Super Bowl 50 was an American football game. The Denver Broncos (AFC) "
    "defeated the Carolina Panthers."
)
TRIVIA_BODY = "Kiribati  Kiribati is an island nation. Its capital is South Tarawa."
NQ_BODY = "The Eiffel Tower is in Paris. It was completed in 1889."
DROP_BODY = "The Bears scored 14 points in the first quarter. The Lions scored 7 points."


def jrt(lead: str, body: str, query: str) -> str:
    """The paper's JRT-Prompt shape: lead, the context twice (one newline apart), the query."""
    return f"{lead} {body}\n{body} {query}"


NQ_CLOZE = "The Eiffel Tower was completed in"
DROP_CLOZE = "The number of points the Bears scored in the first quarter was"
EXPECTED = {
    ("fda", "default"): f"{FDA_BODY} Applicant:",
    ("fda", "jrt_prompt"): jrt("Information about Applicant.", FDA_BODY, "Applicant:"),
    ("swde", "default"): f"{SWDE_BODY} Director:",
    ("swde", "jrt_prompt"): jrt("Information about Director.", SWDE_BODY, "Director:"),
    ("squad", "default"): SQUAD_TEXT,
    ("squad", "jrt_prompt"): (
        f"Which NFL team represented the AFC at Super Bowl 50? {SQUAD_PASSAGE}\n{SQUAD_TEXT}"
    ),
    ("triviaqa", "default"): f"{TRIVIA_BODY} The capital of Kiribati is",
    ("triviaqa", "jrt_prompt"): jrt(
        "What is the capital of Kiribati?", TRIVIA_BODY, "The capital of Kiribati is"
    ),
    # the released NQ default keeps a trailing lower-case copy of the cloze stem (see templates)
    ("nq", "default"): (
        "The Eiffel Tower is in Paris. It was completed in 1889. "
        f"the eiffel tower was completed in. {NQ_CLOZE}"
    ),
    ("nq", "jrt_prompt"): jrt("when was the eiffel tower completed", NQ_BODY, NQ_CLOZE),
    ("drop", "default"): f"{DROP_BODY} {DROP_CLOZE}",
    ("drop", "jrt_prompt"): jrt(
        "How many points did the Bears score in the first quarter?", DROP_BODY, DROP_CLOZE
    ),
}


@pytest.mark.parametrize(("task", "strategy"), sorted(EXPECTED))
def test_first_row_prompt_is_the_papers_string(task: str, strategy: str, bpe) -> None:
    spec = DEFAULT if strategy == "default" else TWICE
    assert prompt(task, 0, spec, bpe) == EXPECTED[(task, strategy)]


def test_nq_twice_strips_a_trailing_colon_from_the_question(bpe) -> None:
    body = "Mount Everest is Earth's highest mountain above sea level, in the Himalayas."
    assert prompt("nq", 1, TWICE, bpe) == (
        "what is earth's highest mountain " + body + "\n" + body + " Earth's highest mountain is"
    )


def test_fda_row_whose_text_ends_with_the_key_prompt(bpe) -> None:
    body = (
        "Flow Meter FM-2 premarket notification. The 510(k) number: K190007. "
        "Device name: Flow Meter."
    )
    assert prompt("fda", 1, DEFAULT, bpe) == body + " 510(k) number:"


def test_repeats_three_and_read2x_and_left_pad_layouts(bpe) -> None:
    three = prompt("drop", 0, StrategySpec("jrt_prompt", 1, {"repeats": 3}), bpe)
    assert three.count(DROP_BODY) == 3 and three.startswith("How many points")
    assert (
        prompt("drop", 0, StrategySpec("jrt_rnn_read2x", 1), bpe)
        == EXPECTED[("drop", "jrt_prompt")]
    )
    assert (
        prompt("drop", 0, StrategySpec("jrt_rnn_left_pad", 1), bpe) == EXPECTED[("drop", "default")]
    )
    assert prompt("drop", 0, StrategySpec("question_first", 1), bpe) == (
        "How many points did the Bears score in the first quarter? "
        + DROP_BODY
        + " The number of points the Bears scored in the first quarter was"
    )


def test_skip_rule_and_missing_anchor_are_counted(bpe) -> None:
    fda = build_dataset_task("fda", TASK_VERSION, {})
    assert fda.num_examples() == 3 and fda.skipped == {"short_anchor": 1}  # row 2: value "B"
    examples = fda.examples(0, 3, bpe, DEFAULT)
    assert [e.meta["rowIndex"] for e in examples] == [0, 1, 3]
    assert [e.meta.get("anchorMissing", False) for e in examples] == [False, False, True]
    assert [e.meta["docId"] for e in examples] == ["fda-0", "fda-1", "fda-3"]
    nq = build_dataset_task("nq", TASK_VERSION, {})
    assert nq.num_examples() == 2 and nq.skipped == {"no_answers": 1}
    assert build_dataset_task("nq", TASK_VERSION, {"limit": 1}).num_examples() == 1


def test_truncation_uses_the_models_tokenizer_and_budget(bpe) -> None:
    task = build_dataset_task("fda", TASK_VERSION, {"contextTokens": 12})
    (example,) = task.examples(0, 1, bpe, DEFAULT)
    start, end = example.meta["windowStart"], example.meta["windowEnd"]
    assert end - start == 12 and example.meta["docTokens"] > 12
    # the window is centred on the earliest anchor ("Applicant" precedes "Acme Medical Inc")
    doc = FDA_BODY + "\n"
    anchor_token = len(bpe.encode(doc[: doc.lower().index("applicant")]))
    assert start == anchor_token - 6
    window = bpe.decode(bpe.encode(doc.strip())[start:end])
    assert example.prompt_text == fda_default({"key": "applicant", "text": window})
    assert window == "tent X.\nApplican"  # the tiny fixture BPE splits words; GPT-2 would not


def test_gold_lists_and_contains_scoring_through_the_task(bpe) -> None:
    drop = build_dataset_task("drop", TASK_VERSION, {})
    first, second = drop.examples(0, 2, bpe, DEFAULT)
    assert first.gold == ["14", "fourteen"] and second.gold == ["8,000"]
    assert drop.score(" Fourteen points", first.gold) == 1.0  # any gold, any case
    assert drop.score(" 8,000 people", second.gold) == 1.0
    assert drop.score(" 8 000", second.gold) == 0.0
    fda = build_dataset_task("fda", TASK_VERSION, {})
    assert fda.score(" K190007", ["510(k)"]) == 0.0
    assert fda.score(" 510k", ["510(k)"]) == 0.0  # "(k)" is literal, not a regex group
    assert fda.score(" the 510(K) form", ["510(k)"]) == 1.0
    assert fda.score(" 830", ["8.0"]) == 0.0  # "." is literal


def test_few_shot_draws_other_docs_deterministically(bpe) -> None:
    task = build_dataset_task("drop", TASK_VERSION, {})
    spec = StrategySpec("few_shot", 1, {"shots": 1})
    (example,) = task.examples(0, 1, bpe, spec)
    assert example.prompt_text == (
        "In 1990 the population was 5,000. By 2000 it had grown to 8,000. The population "
        "in 2000 was 8,000\n\n" + EXPECTED[("drop", "default")]
    )
    assert task.examples(0, 1, bpe, spec) == [example]
    with pytest.raises(ValueError, match="shots=2"):
        task.examples(0, 1, bpe, StrategySpec("few_shot", 1, {"shots": 2}))


def test_data_digest_covers_bytes_and_params_but_not_location(tmp_path: Path) -> None:
    base = build_dataset_task("squad", TASK_VERSION, {}).data_digest()
    copy = tmp_path / "squad"
    shutil.copytree(FIXTURES / "hazyresearch" / "based-squad", copy)
    assert build_dataset_task("squad", TASK_VERSION, {"dataDir": str(copy)}).data_digest() == base
    assert build_dataset_task("squad", TASK_VERSION, {"contextTokens": 500}).data_digest() != base
    rows = (copy / "validation.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    row["value"] = "Broncos"
    (copy / "validation.jsonl").write_text("\n".join([json.dumps(row), *rows[1:]]) + "\n")
    assert build_dataset_task("squad", TASK_VERSION, {"dataDir": str(copy)}).data_digest() != base
    assert (
        build_dataset_task("nq", TASK_VERSION, {"variant": 512}).data_digest()
        != build_dataset_task("nq", TASK_VERSION, {}).data_digest()
    )


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("fda", {"context_tokens": 950}, "context_tokens"),
        ("fda", {"limit": 0}, "limit"),
        ("nq", {"variant": 4096}, "variant"),
        ("drop", {"variant": 512}, "variant"),
        ("squad", {"contextTokens": "950"}, "contextTokens"),
    ],
)
def test_bad_params_name_the_field(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_dataset_task(name, TASK_VERSION, params)


def test_missing_data_names_the_paths_it_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWICE_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        build_dataset_task("nq", TASK_VERSION, {"variant": 2048})
    assert str(tmp_path / "hazyresearch" / "based_nq_2048") in str(error.value)
    with pytest.raises(ValueError, match="unknown recall task"):
        build_dataset_task("hotpotqa", TASK_VERSION, {})
    with pytest.raises(ValueError, match="version"):
        build_dataset_task("fda", TASK_VERSION + 1, {})


def test_schema_errors_name_row_and_field(tmp_path: Path) -> None:
    (tmp_path / "validation.jsonl").write_text(
        json.dumps({"context": "c", "question": "q", "answers": ["a"]}) + "\n"
    )
    with pytest.raises(ValueError, match="row 0: missing field 'orig_question'"):
        build_dataset_task("drop", TASK_VERSION, {"dataDir": str(tmp_path)})


def test_example_ranges_are_checked(bpe) -> None:
    task = build_dataset_task("squad", TASK_VERSION, {})
    with pytest.raises(ValueError, match="outside"):
        task.examples(0, 3, bpe, DEFAULT)
    assert task.examples(1, 1, bpe, DEFAULT) == []


def test_registry_routes_the_six_names_here() -> None:
    from twice_inference.tasks import build_task
    from twice_inference.tasks.datasets import RecallTask

    for name in ("fda", "swde", "squad", "triviaqa", "nq", "drop"):
        task = build_task(name, TASK_VERSION, {})
        assert isinstance(task, RecallTask) and task.name == name and task.version == TASK_VERSION


def test_parquet_without_pyarrow_says_what_to_do(tmp_path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "validation-00000-of-00001.parquet").write_bytes(b"PAR1")
        with pytest.raises(ValueError, match="pyarrow"):
            build_dataset_task("drop", TASK_VERSION, {"dataDir": str(tmp_path)})
    else:
        pytest.skip("pyarrow is installed; the fallback message is not reachable")


def test_full_split_of_another_size_than_table_7_warns(tmp_path: Path) -> None:
    row = {"context": "a long enough context", "question": "q", "orig_question": "q?"}
    lines = [json.dumps({**row, "answers": ["context"]}) for _ in range(3)]
    (tmp_path / "validation.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="Table 7 has 2084"):
        build_dataset_task("drop", TASK_VERSION, {"dataDir": str(tmp_path)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a limited read is a subset on purpose: no warning
        build_dataset_task("drop", TASK_VERSION, {"dataDir": str(tmp_path), "limit": 2})
