"""The perplexity task's protocol on a hand-made corpus: every slice count and NLL sum checked
against a by-hand classification, the scored window, the Figure 3 restrictions, and the
generated language's documents (pure in (seed, index), held out from training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twice_inference.tasks.bigrams import build
from twice_inference.tasks.language import TRAIN_SEED, load_language
from twice_inference.tasks.perplexity import PerplexityTask, protocol_slice_sums
from twice_inference.tasks.slices import load_bigram_counts, slice_config
from twice_inference.tokenizers import SYNTHETIC_V1, load_tokenizer

# Training counts: (3,4) 7, (1,2) 2, (2,3) 20, (2,9) 1; every other bigram 0.
TRAINING = [[3, 4]] * 7 + [[1, 2]] * 2 + [[2, 3]] * 20 + [[2, 9]]
# positions   0  1  2  3  4  5  6  7  8  9 10 11
DOC_A = [1, 2, 3, 4, 1, 2, 9, 3, 4, 1, 2, 3]
DOC_B = [11, 12, 13, 14, 15, 16, 5, 6, 5, 6]
# 12-token sequences scored from position 6. By hand:
# A: t6 (2,9) new, count 1 -> other; t7 (9,3) new, 0 -> other; t8 (3,4) last at 3, d 5, count 7
#    -> AR hit; t9 (4,1) d 5, 0 -> AR hit; t10 (1,2) last at 5 (not 1), d 5, 2 -> AR hit;
#    t11 (2,3) d 9, count 20 >= 10 -> other (a repeat of a frequent bigram). t5 repeats (1,2) but
#    is context only.
# B (10 tokens): t6, t7, t8 new with count 0 -> other; t9 (5,6) last at 7, d 2, 0 -> AR hit.
NLL_A = {t: t / 8 for t in range(1, 12)}
NLL_B = {6: 2.0, 7: 2.5, 8: 3.0, 9: 3.5}
PARAMS = {
    "numExamples": 2,
    "sequenceTokens": 12,
    "scoredTokens": 6,
    "recallMinDistance": 5,
    "distanceMaxCount": 8,
}
SETTINGS = {
    "frequency_threshold": 10,
    "frequency_bin_edges": [0, 1, 5, 10],
    "distance_bin_edges": [1, 4, 8],
    "bigram_counts": None,
}
EXPECTED = {
    "ar_hit": (1.0 + 1.125 + 1.25 + 3.5, 4),
    "other": (0.75 + 0.875 + 1.375 + 2.0 + 2.5 + 3.0, 6),
    # repeats at distance >= 5, by training count (B's t9, at distance 2, is left out)
    "fig3/recall-freq:0-1": (1.125, 1),
    "fig3/recall-freq:1-5": (1.25, 1),
    "fig3/recall-freq:5-10": (1.0, 1),
    "fig3/recall-freq:10-inf": (1.375, 1),
    # repeats with training count < 8, by distance (A's t11, count 20, is left out)
    "fig3/recall-dist:1-4": (3.5, 1),
    "fig3/recall-dist:4-8": (1.0 + 1.125 + 1.25, 3),
    "fig3/recall-dist:8-inf": (0.0, 0),
    # non-repeats, by training count
    "fig3/other-freq:0-1": (0.875 + 2.0 + 2.5 + 3.0, 4),
    "fig3/other-freq:1-5": (0.75, 1),
    "fig3/other-freq:5-10": (0.0, 0),
    "fig3/other-freq:10-inf": (0.0, 0),
}


def write_jsonl(path: Path, docs: list[list[int]]) -> None:
    path.write_text("".join(json.dumps({"ids": d}) + "\n" for d in docs))


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWICE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TWICE_CACHE", str(tmp_path / "cache"))
    write_jsonl(tmp_path / "train.jsonl", TRAINING)
    write_jsonl(tmp_path / "eval.jsonl", [DOC_A, DOC_B])
    return tmp_path


def table_setting(corpus: Path) -> dict:
    path, _ = build("train.jsonl", out_dir=corpus / "tables", progress=False)
    assert load_bigram_counts(path).as_dict() == {(3, 4): 7, (1, 2): 2, (2, 3): 20, (2, 9): 1}
    return {**SETTINGS, "bigram_counts": str(path)}


def test_hand_made_corpus_slices_exactly(corpus: Path) -> None:
    settings = table_setting(corpus)
    task = PerplexityTask({"corpus": "eval.jsonl", **PARAMS})
    assert task.sequences(0, 2, load_tokenizer(SYNTHETIC_V1)) == [DOC_A, DOC_B]
    table = task.bigram_table(slice_config(settings))
    totals: dict[str, list[float]] = {}
    for ids, by_position in ((DOC_A, NLL_A), (DOC_B, NLL_B)):
        # the engine's form: entry j is token j + 1; unscored tokens carry a poison value
        nll = [by_position.get(t, 99.0) for t in range(1, len(ids))]
        for entry in protocol_slice_sums(ids, nll, settings, table, task.params):
            total = totals.setdefault(entry["slice"], [0.0, 0])
            total[0] += entry["nllSum"]
            total[1] += entry["tokenCount"]
    assert {k: (v[0], v[1]) for k, v in totals.items()} == EXPECTED


def test_a_file_corpus_needs_a_table_and_enough_documents(corpus: Path) -> None:
    task = PerplexityTask({"corpus": "eval.jsonl", **PARAMS})
    with pytest.raises(ValueError, match="needs slices.bigramCounts"):
        task.bigram_table(slice_config(SETTINGS))
    with pytest.raises(ValueError, match="holds 2 documents"):
        PerplexityTask({"corpus": "eval.jsonl", **PARAMS, "numExamples": 3})
    with pytest.raises(ValueError, match="without '..'"):
        PerplexityTask({"corpus": "../eval.jsonl", **PARAMS})
    with pytest.raises(ValueError, match="scoredTokens=12 must be below"):
        PerplexityTask({"corpus": "eval.jsonl", **PARAMS, "scoredTokens": 12})
    with pytest.raises(ValueError, match="numExamples"):
        PerplexityTask({"corpus": "eval.jsonl", **PARAMS, "numExamples": 10**9})


def test_generated_language_is_pure_and_held_out() -> None:
    language = load_language("repeats-v1")
    block = language.documents(0, 0, 6)
    assert block.shape == (6, 2048)
    assert np.array_equal(language.documents(0, 3, 5), block[3:5])
    assert not np.array_equal(language.documents(TRAIN_SEED, 0, 2), block[:2])
    task = PerplexityTask({"corpus": "synthetic:repeats-v1", "numExamples": 4, "seed": 0})
    assert task.sequences(1, 3, load_tokenizer(SYNTHETIC_V1)) == block[1:3].tolist()
    # recall occurs: a good share of the scored half repeats an earlier bigram
    ids = block[0].tolist()
    seen, repeats = set(), 0
    for t in range(1, len(ids)):
        repeats += t >= 1024 and (ids[t - 1], ids[t]) in seen
        seen.add((ids[t - 1], ids[t]))
    assert repeats > 300


def test_bigram_build_is_exact_content_addressed_and_names_bad_lines(tmp_path: Path) -> None:
    from twice_inference.tasks.slices import build_bigram_counts_reference

    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 50, size=int(rng.integers(0, 12))).tolist() for _ in range(300)]
    write_jsonl(tmp_path / "c.jsonl", docs)
    lengths = [len(d) for d in docs]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    np.savez(
        tmp_path / "c.npz", ids=np.array([i for d in docs for i in d], np.uint32), offsets=offsets
    )
    expected = dict(build_bigram_counts_reference(docs))
    tables = tmp_path / "tables"
    for name in ("c.jsonl", "c.npz"):
        path, stats = build(str(tmp_path / name), out_dir=tables, progress=False)
        assert load_bigram_counts(path).as_dict() == expected
        assert stats["documents"] == 300
        # the same bytes again: found, not recounted
        again, stats = build(str(tmp_path / name), out_dir=tables, progress=False)
        assert again == path and stats["documents"] == 0
    (tmp_path / "bad.jsonl").write_text('{"ids": [1, 2]}\n{"ids": [3, 1.5]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: 'ids' must be a list of integers"):
        build(str(tmp_path / "bad.jsonl"), out_dir=tables, progress=False)
    (tmp_path / "text.jsonl").write_text('{"text": "k1 v2 k1 v2"}\n')
    with pytest.raises(ValueError, match="needs a tokenizer"):
        build(str(tmp_path / "text.jsonl"), out_dir=tables, progress=False)
    path, _ = build(str(tmp_path / "text.jsonl"), "synthetic-v1", out_dir=tables, progress=False)
    tokenizer = load_tokenizer(SYNTHETIC_V1)
    k1, v2 = tokenizer.encode("k1 v2")
    assert load_bigram_counts(path).as_dict() == {(k1, v2): 2, (v2, k1): 1}
