"""Tiny-zoo training (``twice_inference.train``): a CPU micro run whose loss falls, checkpoints that
reload through the registry's loader into the same function, a manifest whose digest matches the
file, seed bands disjoint from evaluation, the JRT-RNN objective keeping the answer out of the
encoder region, the decoder families' fan-in init (``DecoderLM.init_random``), the zoo configs'
sizes, and how ``--jobs`` spreads training processes over GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from twice_inference import train as zoo_train
from twice_inference.models.registry import (
    build_model,
    count_parameters,
    load_weights,
    read_state_dict,
)
from twice_inference.tokenizers import load_tokenizer

VOCAB = 3309
TINY_TRANSFORMER = {
    "vocab_size": VOCAB,
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "mlp_hidden": 64,
}
TINY_JRT = {
    "vocab_size": VOCAB,
    "d_model": 32,
    "n_layers": 2,
    "linear_attn_layers": [1],
    "sliding_window_layers": [],
    "mlp_hidden": 64,
    "la_heads": 2,
    "feature_dim": 4,
    "conv_expand": 2,
    "encoder_length": 64,
}


def tiny_config(name: str, family: str, model: dict, **extra) -> zoo_train.ZooTrainingConfig:
    return zoo_train.ZooTrainingConfig(
        name=name,
        family=family,
        model=model,
        seed=7,
        steps=30,
        batch_size=8,
        lr=3e-3,
        warmup_steps=2,
        eval_every=10,
        eval_examples=4,
        final_eval_examples=4,
        **extra,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("zoo")
    config = tiny_config("zoo-test-attn", "transformer", TINY_TRANSFORMER)
    run = zoo_train.train(config, out, log=lambda line: None)
    zoo_train.write_manifest(out)
    return out, run


def test_loss_goes_down(trained) -> None:
    _, run = trained
    losses = [p["loss"] for p in run["points"] if "loss" in p]
    assert len(losses) == 3
    assert losses[-1] < losses[0] - 0.5, losses
    assert run["steps"] == 30 and not run["stoppedEarly"]
    assert set(run["finalValAccuracy"]) == {"mqar", "set_disjointness", "synthetic_doc_qa"}
    for by_strategy in run["finalValAccuracy"].values():
        assert set(by_strategy) == {"default", "jrt_prompt"}


def test_checkpoint_round_trips_to_the_same_logits(trained) -> None:
    out, _ = trained
    directory = out / "zoo-test-attn"
    config = zoo_train.ZooTrainingConfig.model_validate(
        {**tiny_config("zoo-test-attn", "transformer", TINY_TRANSFORMER).model_dump()}
    )
    original = zoo_train.build_zoo_model(config)  # same seed: the untrained weights
    reloaded = build_model("transformer", json.loads((directory / "config.json").read_text()))
    load_weights(reloaded, "transformer", read_state_dict(directory), directory)
    # The tied head was stored once and re-tied by the loader.
    assert reloaded.lm_head.weight.data_ptr() == reloaded.embeddings.weight.data_ptr()
    trained_state = read_state_dict(directory)
    original.load_state_dict(
        {**trained_state, "lm_head.weight": trained_state["embeddings.weight"]}
    )
    ids = torch.randint(2, VOCAB, (2, 12))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, :4] = False
    with torch.no_grad():
        assert torch.equal(original.eval()(ids, mask), reloaded.eval()(ids, mask))


def test_manifest_digest_matches_the_weights(trained) -> None:
    out, run = trained
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["models"]["zoo-test-attn"]
    assert manifest["version"] == 1
    assert entry["sha256"] == zoo_train.sha256_file(out / "zoo-test-attn" / "model.safetensors")
    assert entry["params"] == run["params"] and entry["steps"] == 30
    assert entry["generatorVersions"]["tokenizer"] == "synthetic-v1"
    assert entry["config"] == TINY_TRANSFORMER


def test_training_validation_and_evaluation_seeds_are_disjoint() -> None:
    tokenizer = load_tokenizer("synthetic-v1")
    stream = zoo_train.TrainingStream(0, 4, tokenizer)
    train_seeds = [task.params.seed for _, _, task in stream.variants]
    assert min(train_seeds) >= 1_000_000
    validation_seeds = [zoo_train.validation_seed(i) for i in range(3)]
    zoo_train.check_seed_bands(train_seeds, validation_seeds)
    with pytest.raises(AssertionError):
        zoo_train.check_seed_bands([5], validation_seeds)
    with pytest.raises(AssertionError):
        zoo_train.check_seed_bands(train_seeds, train_seeds[:1])
    # No training prompt equals a validation prompt of the same task and layout.
    validation = zoo_train.validation_sets(tokenizer, 20)
    for sequence in stream.batch(0) + stream.batch(1):
        held_out = validation[sequence.task][sequence.strategy]
        assert all(sequence.prompt_ids != v.prompt_ids for v in held_out)


def test_batches_are_a_pure_function_of_the_step() -> None:
    tokenizer = load_tokenizer("synthetic-v1")
    a = zoo_train.TrainingStream(3, 6, tokenizer).batch(11)
    b = zoo_train.TrainingStream(3, 6, tokenizer).batch(11)
    assert a == b
    assert {s.strategy for s in zoo_train.TrainingStream(3, 64, tokenizer).batch(0)} == {
        "default",
        "jrt_prompt",
    }


def test_jrt_training_forward_keeps_the_answer_out_of_the_encoder() -> None:
    config = tiny_config("zoo-test-jrt", "jrt_rnn", TINY_JRT, mlm_weight=0.25)
    model = zoo_train.build_zoo_model(config).eval()
    tokenizer = load_tokenizer("synthetic-v1")
    sequences = zoo_train.TrainingStream(1, 3, tokenizer).batch(0)
    sequences = [s for s in sequences if len(s.prompt_ids) < 64][:2]
    assert sequences
    batch = zoo_train.collate(sequences, tokenizer.pad_id, tokenizer.newline_id)
    changed = batch.input_ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % VOCAB  # another answer word
    with torch.no_grad():
        logits = zoo_train.model_logits(
            model, "jrt_rnn", batch.input_ids, batch.mask, batch.prompt_lengths
        )
        other = zoo_train.model_logits(model, "jrt_rnn", changed, batch.mask, batch.prompt_lengths)
        # Everything up to the answer prediction is blind to the answer token...
        assert torch.allclose(logits[:, :-1], other[:, :-1], atol=1e-6)
        # ...and equals what inference sees: prefill of the prompt alone (padded to M).
        prompt_logits, _ = model.prefill(batch.input_ids[:, :-1], batch.mask[:, :-1])
        assert torch.allclose(logits[:, -2], prompt_logits, atol=1e-4)
    assert model.layers[1].mixer.encoder_length == 64  # restored after the pass


def test_jrt_objective_adds_masked_lm_on_the_prompt_only() -> None:
    config = tiny_config("zoo-test-jrt", "jrt_rnn", TINY_JRT, mlm_weight=0.25, mlm_probability=0.5)
    model = zoo_train.build_zoo_model(config)
    tokenizer = load_tokenizer("synthetic-v1")
    batch = zoo_train.collate(
        zoo_train.TrainingStream(2, 4, tokenizer).batch(0), tokenizer.pad_id, tokenizer.newline_id
    )
    gen = torch.Generator().manual_seed(0)
    ids, targets = zoo_train.mask_encoder_tokens(batch, model, 0.5, tokenizer.pad_id, gen)
    chosen = targets != -100
    assert chosen.any()
    assert (ids[chosen] == tokenizer.pad_id).all() and batch.mask[chosen].all()
    assert not chosen[:, -2:].any()  # neither the last prompt token nor the answer
    loss, terms = zoo_train.loss_terms(model, config, batch, tokenizer.pad_id, gen)
    assert loss.requires_grad and "mlm" in terms
    assert terms["loss"] == pytest.approx(terms["ntp"] + 0.25 * terms["mlm"], rel=1e-5)


def test_committed_configs_are_valid_and_small() -> None:
    configs = sorted(zoo_train.CONFIG_DIR.glob("*.json"))
    assert {p.stem for p in configs} >= {
        "zoo-attn-tiny",
        "zoo-based-tiny",
        "zoo-based-small",
        "zoo-jrt-tiny",
        "zoo-mamba-tiny",
        "zoo-mamba-small",
    }
    total = 0
    for path in configs:
        config = zoo_train.load_config(path)
        assert config.name == path.stem
        assert config.model["vocab_size"] == VOCAB
        assert config.model["d_model"] <= 128
        assert (config.mlm_weight == 0.25) == (config.family == "jrt_rnn")
        # the perplexity zoo (zoo-lm-*) reads the whole training stream that
        # `twice bigrams build synthetic:repeats-v1` counts
        assert (config.objective == "next_token") == config.name.startswith("zoo-lm-")
        if config.objective == "next_token":
            assert config.train_documents == 16_384 and config.seq_len == 2048
        params = count_parameters(build_model(config.family, config.model))
        assert 700_000 <= params <= 1_200_000, (config.name, params)
        total += params * (2 if config.save_dtype == "float16" else 4)
    # The zoo is committed (the tied head stored once) and travels with the repository.
    assert total < 32_000_000, total


def tiny_lm_config(**extra) -> zoo_train.ZooTrainingConfig:
    """A next-token run on the language's first 16 documents, cut to 64 tokens."""
    return tiny_config(
        "zoo-test-lm",
        "transformer",
        TINY_TRANSFORMER,
        objective="next_token",
        corpus="synthetic:repeats-v1",
        seq_len=64,
        train_documents=16,
        **extra,
    )


def test_next_token_objective_trains_on_the_language_and_reports_slices(tmp_path: Path) -> None:
    config = tiny_lm_config(save_dtype="float16")
    run = zoo_train.train(config, tmp_path, log=lambda line: None)
    losses = [p["loss"] for p in run["points"] if "loss" in p]
    assert losses[-1] < losses[0] - 0.5, losses
    final = run["finalValPerplexity"]
    assert final["arHitPerplexity"] > 1 and final["otherPerplexity"] > 1
    assert run["trainingCorpus"]["documents"] == 16 and "finalValAccuracy" not in run
    weights = read_state_dict(tmp_path / "zoo-test-lm")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    manifest = zoo_train.write_manifest(tmp_path)["models"]["zoo-test-lm"]
    assert manifest["objective"] == "next_token" and manifest["finalValPerplexity"] == final
    with pytest.raises(ValueError, match="names the corpus it reads"):
        tiny_config("zoo-test-lm", "transformer", TINY_TRANSFORMER, objective="next_token")


def test_curriculum_batches_hold_short_documents_with_the_same_tokens_per_step() -> None:
    from twice_inference.train.data import CorpusStream

    stream = CorpusStream(
        7, 2, "synthetic:repeats-v1", 64, 16, curriculum_steps=3, curriculum_seq_len=16
    )
    early, late = stream.batch(2), stream.batch(3)
    assert early.input_ids.shape == (8, 16) and late.input_ids.shape == (2, 64)
    # a short row is the start of a training document, a long one too
    starts = {tuple(row[:16]) for row in stream.documents.tolist()}
    assert all(tuple(row) in starts for row in early.input_ids.tolist())
    assert torch.equal(stream.batch(2).input_ids, early.input_ids)
    with pytest.raises(ValueError, match="needs both"):
        tiny_lm_config(curriculum_steps=5)
    with pytest.raises(ValueError, match="divides seq_len=64"):
        tiny_lm_config(curriculum_steps=5, curriculum_seq_len=24)
    with pytest.raises(ValueError, match="for next_token"):
        tiny_config(
            "zoo-test-attn",
            "transformer",
            TINY_TRANSFORMER,
            curriculum_steps=5,
            curriculum_seq_len=8,
        )


def test_a_curriculum_run_stops_at_its_time_limit(tmp_path: Path) -> None:
    config = tiny_lm_config(curriculum_steps=5, curriculum_seq_len=16).model_copy(
        update={"steps": 100_000, "eval_every": 100_000}
    )
    lines: list[str] = []
    # a limit far below what 100,000 steps take: the run stops there, however it was planned
    run = zoo_train.train(config, tmp_path, time_limit=3.0, log=lines.append)
    assert run["stoppedEarly"] and 1 <= run["steps"] < 100_000
    assert any("time limit reached" in line or "shortened" in line for line in lines), lines
    assert run["wallSeconds"] < 60


@pytest.mark.parametrize(
    ("small", "tiny", "state_field"),
    [
        ("zoo-based-small", "zoo-based-tiny", ("feature_dim",)),
        ("zoo-mamba-small", "zoo-mamba-tiny", ("ssm_cfg", "d_state")),
    ],
)
def test_small_state_variants_differ_only_in_state_size(small, tiny, state_field) -> None:
    """The recall-vs-state-size comparison needs everything but the state held fixed."""
    configs = {n: zoo_train.load_config(zoo_train.CONFIG_DIR / f"{n}.json") for n in (small, tiny)}
    dumped = {n: c.model_dump(exclude={"name"}) for n, c in configs.items()}
    small_value, tiny_value = dumped[small]["model"], dumped[tiny]["model"]
    for key in state_field[:-1]:
        small_value, tiny_value = small_value[key], tiny_value[key]
    assert small_value.pop(state_field[-1]) < tiny_value.pop(state_field[-1])
    assert dumped[small] == dumped[tiny]


def test_committed_zoo_models_load_and_match_the_manifest() -> None:
    from twice_inference.models.registry import CatalogEntry, load_entry

    manifest_file = zoo_train.ZOO_DIR / "manifest.json"
    if not manifest_file.is_file():
        pytest.skip("no trained zoo committed")
    manifest = json.loads(manifest_file.read_text())["models"]
    catalog = json.loads((zoo_train.ZOO_DIR.parent / "models" / "catalog.json").read_text())
    entries = [e for e in catalog["models"] if e["source"]["kind"] == "zoo"]
    assert {e["name"] for e in entries} == set(manifest)
    for raw in entries:
        entry = CatalogEntry.model_validate(raw)
        digest = zoo_train.sha256_file(zoo_train.ZOO_DIR / entry.name / "model.safetensors")
        assert digest == manifest[entry.name]["sha256"]
        loaded = load_entry(entry, f"sha256:{digest}", "cpu")
        assert loaded.info.parameters == manifest[entry.name]["params"] == entry.nominalParams
        ids = torch.tensor([loaded.tokenizer.encode("k1 v2 k3 v4 k1 ?")])
        with torch.no_grad():
            logits, state = loaded.model.prefill(ids, torch.ones_like(ids, dtype=torch.bool))
            step_logits, _ = loaded.model.step(logits.argmax(-1), state)
        assert torch.isfinite(step_logits).all()


# ---------------------------------------------------------------------------------------------
# The decoder families' init and the GPU spread
# ---------------------------------------------------------------------------------------------

JRT_WITH_ATTENTION = {
    **TINY_JRT,
    "d_model": 64,
    "n_layers": 3,
    "linear_attn_layers": [1],
    "sliding_window_layers": [2],
    "swa_heads": 2,
}


def test_fan_in_init_scales_each_matrix_by_its_fan_in() -> None:
    config = tiny_config("zoo-test-jrt", "jrt_rnn", JRT_WITH_ATTENTION, mlm_weight=0.25)
    model = zoo_train.build_zoo_model(config)
    residual = (2 * 3) ** -0.5
    kinds = set()
    for name, p in model.named_parameters():
        p = p.detach()
        if "norm" in name:
            assert torch.all(p == 1.0), name
            continue
        if p.dim() == 1:
            assert torch.all(p == 0.0), name
            continue
        fan_in = p[0].numel()
        expected = fan_in**-0.5
        if name.endswith(("out_proj.weight", "fc2.weight")):
            expected *= residual
            kinds.add("residual output")
        else:
            kinds.add("embedding" if name.startswith("embeddings") else "other")
        assert float(p.std()) == pytest.approx(expected, rel=0.15), name
    assert kinds == {"residual output", "embedding", "other"}
    # The embedding is the tied head: 1/sqrt(d_model), so unit-norm rows and unit-scale logits.
    assert float(model.embeddings.weight.detach().norm(dim=-1).mean()) == pytest.approx(
        1.0, rel=0.1
    )
    assert model.lm_head.weight.data_ptr() == model.embeddings.weight.data_ptr()


def test_explicit_std_keeps_the_benchmark_init_and_both_are_seeded() -> None:
    def fresh() -> torch.nn.Module:
        return build_model("jrt_rnn", JRT_WITH_ATTENTION)

    gpt2 = fresh().init_random(seed=3, std=0.02)
    for name, p in gpt2.named_parameters():
        if p.dim() >= 2 and not name.endswith("conv.weight"):
            assert float(p.detach().std()) == pytest.approx(0.02, rel=0.15), name
    conv = gpt2.layers[0].mixer.conv.weight
    assert float(conv.detach().std()) == pytest.approx(conv.shape[-1] ** -0.5, rel=0.3)
    again = fresh().init_random(seed=3, std=0.02).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in gpt2.state_dict().items())
    fan_in = fresh().init_random(seed=3).state_dict()
    assert all(
        torch.equal(v, fan_in[k]) for k, v in fresh().init_random(seed=3).state_dict().items()
    )
    assert not torch.equal(fan_in["embeddings.weight"], again["embeddings.weight"])


def test_fan_in_init_starts_near_uniform_loss_with_unit_scale_logits() -> None:
    """At the zoo's width the head's logits have about unit spread (0.02 gave ~0.23)."""
    model = build_model("transformer", {**TINY_TRANSFORMER, "d_model": 128, "n_heads": 4})
    ids = torch.randint(2, VOCAB, (4, 16))
    with torch.no_grad():
        logits = model.init_random(seed=0).eval()(ids)
        old = model.init_random(seed=0, std=0.02)(ids)
    assert 0.7 < float(logits.std()) < 1.4
    assert float(old.std()) < 0.4


def test_jobs_spread_evenly_over_the_visible_gpus(monkeypatch) -> None:
    busy: list[str] = []
    for _ in range(6):
        busy.append(zoo_train.least_busy_gpu(["0", "1"], busy))
    assert busy == ["0", "1", "0", "1", "0", "1"]
    # A job ending on GPU 1 frees a slot there, not on GPU 0.
    assert zoo_train.least_busy_gpu(["0", "1"], ["0", "0", "1"]) == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert zoo_train.visible_gpus("cuda") == ["2", "3"]
    assert zoo_train.visible_gpus("cuda:1") == []
    assert zoo_train.visible_gpus("cpu") == []


def test_mqar_sequences_ask_and_supervise_every_key_once() -> None:
    tok = load_tokenizer("synthetic-v1")
    stream = zoo_train.TrainingStream(seed=3, batch_size=64, tokenizer=tok)
    mqar = [s for s in stream.batch(0) if s.task == "mqar"]
    others = [s for s in stream.batch(0) if s.task != "mqar"]
    assert mqar and others and all(not s.followups for s in others)
    for s in mqar:
        asked = [s.answer_id, *(answer for _, answer in s.followups)]
        # every pair's value is asked exactly once, and each followup is a one-word key
        assert len(set(asked)) == len(asked) == len(s.followups) + 1
        assert all(len(query) == 1 for query, _ in s.followups)
        ids, targets = zoo_train.layout(s, tok.newline_id)
        # targets[t] is the token at t + 1 wherever it is set: answers and the newlines after them
        assert len(ids) == len(targets)
        supervised = [(t, y) for t, y in enumerate(targets) if y != -100]
        assert all(y == (ids[t + 1] if t + 1 < len(ids) else tok.newline_id) for t, y in supervised)
        assert [y for _, y in supervised] == [
            x for answer in asked for x in (answer, tok.newline_id)
        ]


def test_collate_keeps_the_eval_layout_for_single_query_sequences() -> None:
    tok = load_tokenizer("synthetic-v1")
    plain = zoo_train.Sequence([5, 6, 7], 9, "mqar", "default")
    dense = zoo_train.Sequence([5, 6, 7], 9, "mqar", "default", (((11,), 12),))
    batch = zoo_train.collate([plain, dense], tok.pad_id, tok.newline_id)
    nl = tok.newline_id
    assert batch.input_ids.tolist() == [[0, 0, 0, 5, 6, 7, 9], [5, 6, 7, 9, nl, 11, 12]]
    assert batch.targets.tolist() == [
        [-100, -100, -100, -100, -100, 9, nl],
        [-100, -100, 9, nl, -100, 12, nl],
    ]
    assert batch.prompt_lengths.tolist() == [3, 3]
