"""Synthetic tasks (MQAR, FDA-style doc QA, set disjointness) and the task registry: pinned prompt
strings per strategy, determinism across shards, strict params, digests, meta, registry errors."""

from __future__ import annotations

import re
import sys
import types

import pytest

from twice_inference.tasks import build_task, parse_strategy
from twice_inference.tasks.registry import TASK_VERSIONS, known_task_names
from twice_inference.tasks.set_disjointness import HALF
from twice_inference.tokenizers import SET_ELEMENTS, load_tokenizer

TOK = load_tokenizer("synthetic-v1")
SMALL = {
    "mqar": {"numExamples": 2, "seed": 7, "numKvPairs": 3},
    "synthetic_doc_qa": {"numExamples": 2, "seed": 7, "numFacts": 2},
    "set_disjointness": {"numExamples": 2, "seed": 7, "sizes": [[2, 3]]},
}
STRATEGIES = [
    ("default", {}),
    ("jrt_prompt", {}),
    ("jrt_prompt", {"repeats": 3}),
    ("question_first", {}),
    ("few_shot", {"shots": 1}),
]

# Example 0 of each SMALL task, checked by hand against the layouts: the gold sits in the context
# (MQAR: k481's pair; doc QA: "animal : hare"; SD: e493 is in both sets), JRT repeats the context
# with single newlines after the lead, the query closes every prompt.
MQAR_C = "k481 v425 k319 v115 k350 v395"
DOC_C = (
    "signed from in under during opened . animal : hare . color : brown . "
    "the private updated it approved are annual ."
)
SD_C = "e49 e493 | e493 e806 e1096"
EXPECTED = {
    "mqar": (
        ["v425"],
        {
            "default": f"{MQAR_C} k481",
            "jrt_prompt": f"{MQAR_C}\n{MQAR_C} k481",
            "jrt_prompt_3": f"{MQAR_C}\n{MQAR_C}\n{MQAR_C} k481",
            "question_first": f"k481 ? {MQAR_C} k481",
            "few_shot": f"k371 v502 k408 v410 k425 v370 k371 v502\n{MQAR_C} k481",
        },
    ),
    "synthetic_doc_qa": (
        ["hare"],
        {
            "default": f"{DOC_C} animal :",
            "jrt_prompt": f"information about animal . {DOC_C}\n{DOC_C} animal :",
            "jrt_prompt_3": f"information about animal . {DOC_C}\n{DOC_C}\n{DOC_C} animal :",
            "question_first": f"information about animal . {DOC_C} animal :",
            "few_shot": (
                "filed quietly each committee for during . color : white . sector : medicine ."
                f" sector : medicine\n{DOC_C} animal :"
            ),
        },
    ),
    "set_disjointness": (
        ["e493"],
        {
            "default": f"{SD_C} |",
            "jrt_prompt": f"{SD_C}\n{SD_C} |",
            "jrt_prompt_3": f"{SD_C}\n{SD_C}\n{SD_C} |",
            "question_first": None,  # no question exists for two bare sets
            "few_shot": f"e1515 e703 e847 e1314 | e387 e710 e725 e1314 | e1314\n{SD_C} |",
        },
    ),
}


def first_example(name: str, strategy: str, params: dict):
    task = build_task(name, 1, SMALL[name])
    return task.examples(0, 1, TOK, parse_strategy(strategy, 1, params))[0]


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("strategy,params", STRATEGIES)
def test_pinned_prompts(name: str, strategy: str, params: dict) -> None:
    gold, prompts = EXPECTED[name]
    key = "jrt_prompt_3" if params.get("repeats") == 3 else strategy
    if prompts[key] is None:
        with pytest.raises(ValueError, match="needs a question"):
            first_example(name, strategy, params)
        return
    example = first_example(name, strategy, params)
    assert example.prompt_text == prompts[key]
    assert example.gold == gold
    assert example.example_id == 0
    assert example.prompt_ids == TOK.encode(example.prompt_text)
    assert TOK.decode(example.prompt_ids) == example.prompt_text


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shards_regenerate_identical_examples(name: str) -> None:
    params = {**SMALL[name], "numExamples": 20}
    task = build_task(name, 1, params)
    for strategy, strategy_params in STRATEGIES:
        if name == "set_disjointness" and strategy == "question_first":
            continue
        spec = parse_strategy(strategy, 1, strategy_params)
        whole = task.examples(0, 20, TOK, spec)
        assert task.examples(0, 10, TOK, spec) + task.examples(10, 20, TOK, spec) == whole
        assert build_task(name, 1, params).examples(13, 14, TOK, spec) == whole[13:14]
        assert [e.example_id for e in whole] == list(range(20))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seeds_and_ids_differ(name: str) -> None:
    spec = parse_strategy("default", 1, {})
    a = build_task(name, 1, {**SMALL[name], "numExamples": 10}).examples(0, 10, TOK, spec)
    b = build_task(name, 1, {**SMALL[name], "numExamples": 10, "seed": 8}).examples(
        0, 10, TOK, spec
    )
    assert [e.prompt_text for e in a] != [e.prompt_text for e in b]
    assert len({e.prompt_text for e in a}) == 10


@pytest.mark.parametrize("name", sorted(SMALL))
def test_digest(name: str) -> None:
    task = build_task(name, 1, SMALL[name])
    assert re.fullmatch(r"[0-9a-f]{64}", task.data_digest())
    assert build_task(name, 1, dict(SMALL[name])).data_digest() == task.data_digest()
    assert build_task(name, 1, {**SMALL[name], "seed": 8}).data_digest() != task.data_digest()
    assert (
        build_task(name, 1, {**SMALL[name], "numExamples": 3}).data_digest() != task.data_digest()
    )


def test_digest_fills_defaults() -> None:
    implicit = build_task("mqar", 1, {"numExamples": 5, "seed": 0})
    explicit = build_task("mqar", 1, {"numExamples": 5, "seed": 0, "numKvPairs": 16})
    assert implicit.data_digest() == explicit.data_digest()
    assert implicit.params.num_kv_pairs == 16
    sd = build_task("set_disjointness", 1, {"numExamples": 2, "seed": 0})
    assert sd.params.sizes == [[4, 16], [16, 4]]
    assert build_task("synthetic_doc_qa", 1, {"numExamples": 2, "seed": 0}).params.num_facts == 8


@pytest.mark.parametrize(
    "name,params,message",
    [
        (
            "mqar",
            {"numExamples": 0, "seed": 0},
            r"numExamples: Input should be greater than or equal to 1 \(got 0\)",
        ),
        (
            "mqar",
            {"numExamples": 1, "seed": -1},
            r"seed: Input should be greater than or equal to 0",
        ),
        (
            "mqar",
            {"numExamples": 1, "seed": "1"},
            r"seed: Input should be a valid integer \(got '1'\)",
        ),
        (
            "mqar",
            {"numExamples": 1, "seed": 0, "numKVPairs": 3},
            r"numKVPairs: Extra inputs are not permitted",
        ),
        ("mqar", {"numExamples": 1, "seed": 0, "num_kv_pairs": 3}, r"num_kv_pairs: Extra inputs"),
        (
            "mqar",
            {"numExamples": 1, "seed": 0, "numKvPairs": 513},
            r"numKvPairs: Input should be less than or equal to 512",
        ),
        ("mqar", {"seed": 0}, r"numExamples: Field required"),
        (
            "synthetic_doc_qa",
            {"numExamples": 1, "seed": 0, "numFacts": 14},
            r"numFacts: Input should be less than or equal to 13",
        ),
        (
            "set_disjointness",
            {"numExamples": 1, "seed": 0, "sizes": [[4, 800]]},
            r"sizes\.0\.1: .*less than or equal to 768 \(got 800\)",
        ),
        (
            "set_disjointness",
            {"numExamples": 1, "seed": 0, "sizes": [[4]]},
            r"sizes\.0: .*at least 2 items.*got \[4\]",
        ),
        (
            "set_disjointness",
            {"numExamples": 1, "seed": 0, "sizes": []},
            r"sizes: List should have at least 1 item",
        ),
    ],
)
def test_params_errors_name_the_field(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_task(name, 1, params)


def test_example_range_is_checked() -> None:
    task = build_task("mqar", 1, SMALL["mqar"])
    assert task.examples(1, 1, TOK, parse_strategy("default", 1, {})) == []
    with pytest.raises(ValueError, match=r"\[1, 3\) is outside \[0, 2\)"):
        task.examples(1, 3, TOK, parse_strategy("default", 1, {}))


def test_mqar_examples_are_well_formed() -> None:
    task = build_task("mqar", 1, {"numExamples": 50, "seed": 1, "numKvPairs": 16})
    positions = set()
    for ex in task.examples(0, 50, TOK, parse_strategy("default", 1, {})):
        words = ex.prompt_text.split()
        keys, values, query = words[:-1:2], words[1:-1:2], words[-1]
        assert len(keys) == len(set(keys)) == 16
        assert values[keys.index(query)] == ex.gold[0]
        assert ex.meta["pairsFromEnd"] == 15 - keys.index(query) == 15 - ex.meta["queryPairIndex"]
        assert task.score(f" {ex.gold[0]} ", ex.gold) == 1.0
        assert task.score(ex.gold[0] + "0", ex.gold) == 0.0
        positions.add(ex.meta["pairsFromEnd"])
    assert len(positions) > 5  # the queried pair moves around the context


def test_doc_qa_examples_are_well_formed() -> None:
    task = build_task("synthetic_doc_qa", 1, {"numExamples": 30, "seed": 3, "numFacts": 8})
    for ex in task.examples(0, 30, TOK, parse_strategy("default", 1, {})):
        key = ex.meta["key"]
        assert ex.prompt_text.endswith(f" {key} :")
        facts = re.findall(r"(\w+) : (\w+) \.", ex.prompt_text)
        assert len(facts) == 8 and len({k for k, _ in facts}) == 8
        assert dict(facts)[key] == ex.gold[0]
        assert [k for k, _ in facts].index(key) == ex.meta["factIndex"]


def test_set_disjointness_examples_are_well_formed() -> None:
    sizes = [[1, 32], [32, 1], [4, 768]]
    task = build_task("set_disjointness", 1, {"numExamples": 9, "seed": 0, "sizes": sizes})
    for ex in task.examples(0, 9, TOK, parse_strategy("default", 1, {})):
        assert ex.prompt_text.endswith(" |")
        a_text, b_text = ex.prompt_text[: -len(" |")].split(" | ")
        a, b = a_text.split(), b_text.split()
        assert [len(a), len(b)] == sizes[ex.example_id % 3] == [ex.meta["a"], ex.meta["b"]]
        assert len(set(a)) == len(a) and len(set(b)) == len(b)
        assert set(a) & set(b) == {ex.gold[0]}
        assert b[ex.meta["sharedPositionInB"]] == ex.gold[0]
        assert ex.meta["longer"] == ("a" if len(a) > len(b) else "b")
    assert HALF * 2 == len(SET_ELEMENTS)


def test_every_strategy_prompt_is_in_vocabulary() -> None:
    for name, params in SMALL.items():
        task = build_task(name, 1, {**params, "numExamples": 5})
        for strategy in (
            "default",
            "jrt_prompt",
            "few_shot",
            "jrt_rnn_left_pad",
            "jrt_rnn_read2x",
            "jrt_rnn_iterate",
        ):
            for ex in task.examples(0, 5, TOK, parse_strategy(strategy, 1, {})):
                assert TOK.decode(TOK.encode(ex.prompt_text)) == ex.prompt_text


def test_registry_errors() -> None:
    assert TASK_VERSIONS == {"mqar": 1, "synthetic_doc_qa": 1, "set_disjointness": 1}
    assert "fda" in known_task_names() and "mqar" in known_task_names()
    with pytest.raises(
        ValueError, match=r"unknown task 'mqr'; did you mean 'mqar'\? Known tasks: \['drop'"
    ):
        build_task("mqr", 1, {})
    with pytest.raises(ValueError, match=r"unknown task 'zzz' Known tasks"):
        build_task("zzz", 1, {})
    with pytest.raises(
        ValueError, match="'mqar' version 2 requested, but this worker implements version 1"
    ):
        build_task("mqar", 2, SMALL["mqar"])
    with pytest.raises(ValueError, match="params must be an object"):
        build_task("mqar", 1, [1, 2])


def test_dataset_tasks_route_to_datasets_module(monkeypatch) -> None:
    calls = []
    module = types.ModuleType("twice_inference.tasks.datasets")
    module.build_dataset_task = lambda name, version, params: (
        calls.append((name, version, params)) or "built"
    )
    monkeypatch.setitem(sys.modules, "twice_inference.tasks.datasets", module)
    assert build_task("fda", 1, {"limit": 3}) == "built"
    assert calls == [("fda", 1, {"limit": 3})]
