"""Tiny-zoo training (``twice_inference.train``): a CPU micro run whose loss falls, checkpoints that
reload through the registry's loader into the same function, a manifest whose digest matches the
file, seed bands disjoint from evaluation, and the JRT-RNN objective keeping the answer out of the
encoder region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from twice_inference import train as zoo_train
from twice_inference.models.registry import build_model, load_weights, read_state_dict
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
        "zoo-jrt-tiny",
        "zoo-mamba-tiny",
    }
    for path in configs:
        config = zoo_train.load_config(path)
        assert config.name == path.stem
        assert config.model["vocab_size"] == VOCAB
        assert config.model["d_model"] <= 128
        assert (config.mlm_weight == 0.25) == (config.family == "jrt_rnn")


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
        loaded = load_entry(entry, digest, "cpu")
        assert loaded.info.parameters == manifest[entry.name]["params"] == entry.nominalParams
        ids = torch.tensor([loaded.tokenizer.encode("k1 v2 k3 v4 k1 ?")])
        with torch.no_grad():
            logits, state = loaded.model.prefill(ids, torch.ones_like(ids, dtype=torch.bool))
            step_logits, _ = loaded.model.step(logits.argmax(-1), state)
        assert torch.isfinite(step_logits).all()
