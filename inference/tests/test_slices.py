"""AR-hit slicing on a hand-classified sequence, the bigram table (fast vs reference), and shard
sums that aggregate to exactly the one-pass perplexity."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from twice_inference.contract import SliceSettings
from twice_inference.tasks.slices import (
    build_bigram_counts,
    build_bigram_counts_reference,
    classify_tokens,
    load_bigram_counts,
    merge_slice_sums,
    perplexity,
    slice_config,
    slice_sums,
)

# positions:  0  1  2  3  4  5  6  7  8
IDS = [5, 6, 7, 5, 6, 8, 5, 6, 7]
NLL = [math.nan, 1.0, 2.0, 3.0, 0.5, 4.0, 5.0, 0.25, 1.5]
# By hand: bigram (5,6) ends at 1, 4, 7; (6,7) at 2, 8; (7,5) 3; (6,8) 5; (8,5) 6.
# Repeats: t=4 (5,6) last at 1 -> distance 3; t=7 (5,6) last at 4 -> distance 3 (first occurrence
# would say 6); t=8 (6,7) last at 2 -> distance 6.
# Training counts: (5,6) = 3 (infrequent), (6,7) = 100 (frequent), the rest 0. Threshold 10:
# AR hits = {4, 7}; t=8 repeats a memorised bigram, so it is Other.


@pytest.fixture
def table_path(tmp_path: Path) -> str:
    training = [[5, 6, 5, 6, 5, 6]] + [[6, 7]] * 100  # (5,6) x3, (6,5) x2, (6,7) x100
    path = tmp_path / "bigrams.npz"
    build_bigram_counts(training).save(path)
    return str(path)


def settings(table: str | None) -> dict:
    return {
        "frequency_threshold": 10,
        "frequency_bin_edges": [0, 1, 10, 100],
        "distance_bin_edges": [1, 2, 4, 8],
        "bigram_counts": table,
    }


def as_map(entries: list[dict]) -> dict[str, tuple[float, int]]:
    return {e["slice"]: (e["nllSum"], e["tokenCount"]) for e in entries}


def test_hand_classified_sequence_with_a_table(table_path: str) -> None:
    config = slice_config(settings(table_path))
    classes = classify_tokens(IDS, config, load_bigram_counts(table_path))
    assert [(c.position, c.repeat, c.distance, c.train_count, c.ar_hit) for c in classes] == [
        (1, False, None, 3, False),
        (2, False, None, 100, False),
        (3, False, None, 0, False),
        (4, True, 3, 3, True),
        (5, False, None, 0, False),
        (6, False, None, 0, False),
        (7, True, 3, 3, True),
        (8, True, 6, 100, False),
    ]
    assert as_map(slice_sums(IDS, NLL, settings(table_path))) == {
        "ar_hit": (0.75, 2),
        "other": (16.5, 6),
        # every repeat, binned by training count: t4, t7 at 3; t8 at 100
        "ar_hit/freq:0-1": (0.0, 0),
        "ar_hit/freq:1-10": (0.75, 2),
        "ar_hit/freq:10-100": (0.0, 0),
        "ar_hit/freq:100-inf": (1.5, 1),
        # every non-repeat: t3, t5, t6 at 0; t1 at 3; t2 at 100
        "other/freq:0-1": (12.0, 3),
        "other/freq:1-10": (1.0, 1),
        "other/freq:10-100": (0.0, 0),
        "other/freq:100-inf": (2.0, 1),
        "ar_hit/dist:1-2": (0.0, 0),
        "ar_hit/dist:2-4": (0.75, 2),
        "ar_hit/dist:4-8": (0.0, 0),
        "ar_hit/dist:8-inf": (0.0, 0),
    }


def test_without_a_table_every_repeat_is_an_ar_hit() -> None:
    assert as_map(slice_sums(IDS, NLL, settings(None))) == {
        "ar_hit": (2.25, 3),
        "other": (15.0, 5),
        "ar_hit/dist:1-2": (0.0, 0),
        "ar_hit/dist:2-4": (0.75, 2),
        "ar_hit/dist:4-8": (1.5, 1),
        "ar_hit/dist:8-inf": (0.0, 0),
    }


def test_unscored_prefix_still_counts_as_history(table_path: str) -> None:
    sums = as_map(slice_sums(IDS, NLL, settings(table_path), first_scored=5))
    # t=7 is an AR hit because of t=4, which is not itself scored
    assert sums["ar_hit"] == (0.25, 1) and sums["other"] == (10.5, 3)


def test_engine_form_without_the_leading_entry_is_accepted() -> None:
    # engine.prompt_nll returns len(ids) - 1 values, entry j being token j + 1
    assert slice_sums(IDS, NLL[1:], settings(None)) == slice_sums(IDS, NLL, settings(None))


def test_camel_case_dict_and_attribute_settings_agree(table_path: str) -> None:
    camel = {
        "frequencyThreshold": 10,
        "frequencyBinEdges": [0, 1, 10, 100],
        "distanceBinEdges": [1, 2, 4, 8],
        "bigramCounts": table_path,
    }

    class Attributes:
        frequency_threshold = 10
        frequency_bin_edges = [0, 1, 10, 100]
        distance_bin_edges = [1, 2, 4, 8]
        bigram_counts = table_path

    expected = slice_sums(IDS, NLL, settings(table_path))
    assert slice_sums(IDS, NLL, camel) == expected == slice_sums(IDS, NLL, Attributes())
    contract = SliceSettings.model_validate(camel)  # the worker's payload model
    assert slice_sums(IDS, NLL, contract) == expected


def test_relative_table_path_is_under_the_data_root(
    table_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWICE_DATA_DIR", str(Path(table_path).parent))
    assert slice_sums(IDS, NLL, settings("bigrams.npz")) == slice_sums(
        IDS, NLL, settings(table_path)
    )
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        slice_sums(IDS, NLL, settings("absent.npz"))
    # issue 11 item 11: a relative path may not climb out of the data root
    with pytest.raises(ValueError, match="leaves the data root"):
        slice_sums(IDS, NLL, settings("../../../../etc/passwd"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"distance_bin_edges": [4, 2]}, "strictly increasing"),
        ({"frequency_bin_edges": []}, "frequency_bin_edges"),
        ({"frequency_threshold": 0}, "frequency_threshold"),
    ],
)
def test_bad_settings_are_rejected(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slice_sums(IDS, NLL, {**settings(None), **bad})


def test_nll_must_align_and_be_finite() -> None:
    with pytest.raises(ValueError, match="entries"):
        slice_sums(IDS, NLL[:-2], settings(None))
    with pytest.raises(ValueError, match=r"nll\[3\]"):
        slice_sums(IDS, [*NLL[:3], math.inf, *NLL[4:]], settings(None))


def random_docs(rng: random.Random, count: int, length: int, vocab: int) -> list[list[int]]:
    return [[rng.randrange(vocab) for _ in range(rng.randint(0, length))] for _ in range(count)]


def test_fast_bigram_table_matches_the_counter_reference(tmp_path: Path) -> None:
    docs = random_docs(random.Random(1), 40, 30, 12) + [[2**32 - 1, 0, 2**32 - 1, 0]]
    fast = build_bigram_counts(docs, chunk_tokens=7)  # many chunk merges
    assert fast.as_dict() == dict(build_bigram_counts_reference(docs))
    fast.save(tmp_path / "t.npz")
    loaded = load_bigram_counts(tmp_path / "t.npz")
    assert loaded.as_dict() == fast.as_dict()
    assert loaded.count(2**32 - 1, 0) == 2 and loaded.count(99, 99) == 0
    assert list(loaded.lookup([2**32 - 1, 13], [0, 13])) == [2, 0]


def test_shard_sums_give_exactly_the_one_pass_perplexity(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "train.npz"
    build_bigram_counts(random_docs(rng, 20, 30, 16)).save(path)  # counts ~0-5
    config = {
        "frequency_threshold": 3,
        "frequency_bin_edges": [0, 1, 4, 16],
        "distance_bin_edges": [1, 4, 16, 64],
        "bigram_counts": str(path),
    }
    corpus = [[rng.randrange(16) for _ in range(64)] for _ in range(12)]
    nlls = [[math.nan] + [rng.uniform(0, 9) for _ in range(63)] for _ in corpus]
    per_sequence = [
        slice_sums(ids, nll, config, first_scored=32) for ids, nll in zip(corpus, nlls, strict=True)
    ]

    # every sum is a whole number of 2^-20 quanta, which is what makes float addition exact
    assert all((e["nllSum"] * 2**20).is_integer() for part in per_sequence for e in part)
    one_pass = merge_slice_sums(per_sequence)
    shards = [merge_slice_sums(per_sequence[a:b]) for a, b in ((0, 5), (5, 6), (6, 12))]
    sharded = merge_slice_sums(reversed(shards))  # a different addition order on purpose

    whole, split = as_map(one_pass), as_map(sharded)
    assert whole == split
    assert whole["ar_hit"][1] > 0 and whole["other"][1] > 0
    for name in whole:
        entry = {"slice": name, "nllSum": whole[name][0], "tokenCount": whole[name][1]}
        twin = {"slice": name, "nllSum": split[name][0], "tokenCount": split[name][1]}
        assert perplexity(entry) == perplexity(twin) or (
            math.isnan(perplexity(entry)) and math.isnan(perplexity(twin))
        )
    # the main split partitions the scored tokens; the quantised sum stays within 2^-21 per token
    assert whole["ar_hit"][1] + whole["other"][1] == 12 * 32
    exact_total = math.fsum(x for nll in nlls for x in nll[32:])
    assert abs(whole["ar_hit"][0] + whole["other"][0] - exact_total) <= 12 * 32 * 2**-21
    assert np.isclose(
        perplexity({"nllSum": exact_total, "tokenCount": 12 * 32}),
        math.exp((whole["ar_hit"][0] + whole["other"][0]) / (12 * 32)),
        rtol=2**-21,
    )
