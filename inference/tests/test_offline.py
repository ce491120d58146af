"""``python -m twice_inference.offline``: shards run through the worker's own run_shard
without Temporal's server, one contract-valid line per shard, the same outcomes as the activity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import zoo_shard_payload

from twice_inference import contract
from twice_inference import offline as shards


def _payload(start: int, end: int, strategy: str) -> dict:
    return zoo_shard_payload(
        "zoo-attn-tiny",
        {"name": "synthetic_doc_qa", "version": 1, "params": {"numExamples": 6, "seed": 0}},
        {"name": strategy, "version": 1, "params": {"repeats": 2}},
        start,
        end,
    )


def test_each_shard_lands_as_one_valid_line(tmp_path: Path) -> None:
    payloads = [_payload(0, 3, "jrt_question_first"), _payload(3, 6, "jrt_question_first")]
    (tmp_path / "in.json").write_text(json.dumps(payloads))
    out = tmp_path / "out.jsonl"
    assert shards.main([str(tmp_path / "in.json"), "--out", str(out), "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["request"] for line in lines] == payloads
    ids = []
    for line in lines:
        output = contract.RunShardOutput.model_validate(line["output"])
        ids += [e.example_id for e in output.examples]
        assert all(e.score in (0.0, 1.0) for e in output.examples)
    assert ids == list(range(6))
    # the zoo solves document QA at this size (zoo/README.md): the scores are real outcomes
    assert sum(e["score"] for line in lines for e in line["output"]["examples"]) >= 4


def test_a_file_that_is_not_a_list_of_payloads_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "in.json").write_text(json.dumps({"cellKey": "e" * 64}))
    assert shards.main([str(tmp_path / "in.json"), "--out", str(tmp_path / "o")]) == 2
    assert "expected a JSON list" in capsys.readouterr().err


def test_model_cache_below_one_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "in.json").write_text(json.dumps([]))
    with pytest.raises(SystemExit):
        shards.main([str(tmp_path / "in.json"), "--out", str(tmp_path / "o"), "--model-cache", "0"])
    assert "--model-cache must be >= 1, got 0" in capsys.readouterr().err


def test_a_bad_payload_fails_naming_the_field(tmp_path: Path) -> None:
    bad = _payload(0, 3, "default")
    bad["exampleEnd"] = "three"
    with pytest.raises(Exception, match="exampleEnd"):
        shards.run([bad], tmp_path / "o.jsonl", "cpu")
