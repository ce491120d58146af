"""The model registry: every catalog entry builds on the meta device with about its nominal size,
weights load from a Hugging Face layout directory (hazy key names) and from the zoo layout, missing
weights name the path, the ``--list`` CLI prints the catalog, and the random-weight debug models
reload identically, run a real FDA fixture prompt and refuse any revision but their seed's; the
kernel-level operator entries load without weights or tokenizer and accept only their own
``operator:<op>@v<version>`` revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from twice_inference.bench.end_to_end import TABLE1_MODELS
from twice_inference.models import registry
from twice_inference.models.layers import rel_error
from twice_inference.models.revision import sha256_file

# The catalog lists Table 1's 16 models (the benchmark's copy, which tests/test_end_to_end.py holds
# to specs/paper/table1.yaml) in their order, then the JRT-RNN study's 360M and 1B checkpoints.
EXPECTED_NAMES = [
    *TABLE1_MODELS,
    "jrt-360m-30b",
    "based-360m-30b",
    "mamba-360m-30b",
    "attn-360m-30b",
    "jrt-1b-50b",
]
CATALOG = registry.load_catalog()

TINY_JRT = dict(
    vocab_size=40,
    d_model=16,
    n_layers=3,
    linear_attn_layers=[1],
    sliding_window_layers=[2],
    mlp_hidden=24,
    la_heads=2,
    feature_dim=4,
    swa_heads=2,
    window=4,
    encoder_length=6,
)


def test_catalog_lists_the_21_paper_checkpoints() -> None:
    paper = [entry for entry in CATALOG.models if entry.source.kind == "hf"]
    assert [entry.name for entry in paper] == EXPECTED_NAMES
    hf_ids = {entry.source.hfId for entry in paper}
    assert len(hf_ids) == 21
    assert {
        "hazyresearch/JRT-1B-50B",
        "hazyresearch/attn-1b-50bn",
        "fla-hub/gla-2.7B-100B",
    } <= hf_ids


MODEL_ENTRIES = [entry for entry in CATALOG.models if entry.family != "operator"]


@pytest.mark.parametrize("entry", MODEL_ENTRIES, ids=lambda e: e.name)
def test_every_entry_builds_with_its_nominal_size(entry: registry.CatalogEntry) -> None:
    try:
        model = registry.build_on_meta(entry)
    except registry.FamilyUnavailable as error:
        pytest.skip(f"{entry.family} adapter not available yet: {error}")
    params = registry.count_parameters(model)
    assert abs(params - entry.nominalParams) <= 0.10 * entry.nominalParams, (
        params,
        entry.nominalParams,
    )
    state = model.state_size_bytes(1, 2048)
    assert state > 0
    if entry.family == "transformer":
        assert model.state_size_bytes(1, 4096) == 2 * state  # a KV cache grows with the prompt
    else:
        assert model.state_size_bytes(1, 4096) == state  # recurrent state is fixed


def test_catalog_rejects_unknown_fields() -> None:
    raw = json.loads(registry.CATALOG_PATH.read_text())
    raw["models"][0]["nominal_params"] = 1
    with pytest.raises(ValueError, match="nominal_params"):
        registry.Catalog.model_validate(raw)


def _hazy_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This package's names -> the flash-attn GPT layout of the hazyresearch checkpoints."""
    out = {}
    for key, tensor in state_dict.items():
        if key == "lm_head.weight":
            continue  # tied: hazy files keep only the embedding
        key = key.replace("embeddings.weight", "embeddings.word_embeddings.weight")
        key = key.replace("final_norm.weight", "ln_f.weight").replace(
            ".mixer.conv.", ".mixer.conv.conv."
        )
        out["transformer." + key] = tensor.clone()
    return out


def _tiny_entry(name: str, source: dict) -> registry.CatalogEntry:
    return registry.CatalogEntry(
        name=name,
        family="jrt_rnn",
        source=source,
        dtype="float32",
        config=TINY_JRT,
        nominalParams=1,
    )


def test_loads_a_local_hf_directory_with_hazy_key_names(tmp_path: Path, monkeypatch) -> None:
    source_model = registry.build_model("jrt_rnn", TINY_JRT).init_random(seed=4, std=0.2).eval()
    directory = tmp_path / "hazyresearch" / "tiny-jrt"
    directory.mkdir(parents=True)
    save_file(_hazy_names(source_model.state_dict()), str(directory / "model.safetensors"))
    monkeypatch.setenv("TWICE_MODEL_DIR", str(tmp_path))
    entry = _tiny_entry(
        "tiny-jrt", {"kind": "hf", "hfId": "hazyresearch/tiny-jrt", "tokenizer": "gpt2"}
    )

    loaded = registry.load_entry(
        entry, "hf:hazyresearch/tiny-jrt@main", "cpu", with_tokenizer=False
    )

    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        assert rel_error(loaded.model(ids), source_model(ids)) < 1e-6
    assert loaded.info.family == "jrt_rnn" and loaded.info.dtype == "float32"
    assert loaded.info.parameters == registry.count_parameters(source_model)
    assert loaded.state_bytes(100) == source_model.state_size_bytes(1, 100)


def test_missing_weights_name_the_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TWICE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = CATALOG.get("jrt-360m-30b")
    with pytest.raises(
        registry.WeightsMissing, match=str(tmp_path / "hazyresearch" / "JRT-360M-30B")
    ):
        registry.load_entry(entry, "hf:hazyresearch/JRT-360M-30B@main", "cpu")
    (tmp_path / "hazyresearch" / "JRT-360M-30B").mkdir(parents=True)
    with pytest.raises(registry.WeightsMissing, match="no \\*.safetensors or pytorch_model.bin"):
        registry.load_entry(entry, "hf:hazyresearch/JRT-360M-30B@main", "cpu")


def test_loads_a_zoo_model_with_the_synthetic_tokenizer(tmp_path: Path, monkeypatch) -> None:
    source_model = registry.build_model("jrt_rnn", TINY_JRT).init_random(seed=5).eval()
    directory = tmp_path / "tiny-zoo"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(TINY_JRT))
    save_file(
        {k: v.clone() for k, v in source_model.state_dict().items() if k != "lm_head.weight"},
        str(directory / "model.safetensors"),
    )
    monkeypatch.setattr(registry, "ZOO_DIR", tmp_path)
    entry = _tiny_entry("tiny-zoo", {"kind": "zoo", "path": "zoo/tiny-zoo"})

    digest = sha256_file(directory / "model.safetensors")

    loaded = registry.load_entry(entry, f"sha256:{digest}", "cpu")

    assert loaded.tokenizer is not None and loaded.tokenizer.name == registry.ZOO_TOKENIZER
    ids = torch.randint(0, 40, (1, 5))
    with torch.no_grad():
        assert rel_error(loaded.model(ids), source_model(ids)) < 1e-6
    other = "0" * 64
    with pytest.raises(
        registry.RevisionMismatch, match=f"asks for sha256:{other}, but .* has sha256:{digest}"
    ):
        registry.load_entry(entry, f"sha256:{other}", "cpu")
    with pytest.raises(registry.RevisionMismatch, match="needs a zoo revision, got hf revision"):
        registry.load_entry(entry, "hf:org/tiny-zoo@main", "cpu")
    with pytest.raises(registry.RevisionMismatch, match="'local' has none of the known forms"):
        registry.load_entry(entry, "local", "cpu")


def test_a_hf_revision_is_parsed_once_into_id_and_ref(tmp_path: Path, monkeypatch) -> None:
    """The ref after '@' is what the HF cache is searched for, never the whole revision."""
    hub = tmp_path / "hub"
    monkeypatch.delenv("TWICE_MODEL_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    repo = hub / "models--hazyresearch--JRT-360M-30B"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123\n")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    entry = CATALOG.get("jrt-360m-30b")
    with pytest.raises(registry.WeightsMissing, match="snapshots/abc123"):
        registry.load_entry(entry, "hf:hazyresearch/JRT-360M-30B@main", "cpu")
    assert registry.parse_revision("hf:hazyresearch/JRT-360M-30B@main").parts == (
        "hazyresearch/JRT-360M-30B",
        "main",
    )
    with pytest.raises(registry.RevisionMismatch, match="names 'other/model'"):
        registry.load_entry(entry, "hf:other/model@main", "cpu")


def test_load_model_rejects_unknown_names_and_dtypes() -> None:
    with pytest.raises(KeyError, match="not-a-model"):
        registry.load_model("not-a-model", "hf:org/model@main", "cpu")
    with pytest.raises(ValueError, match="dtype"):
        registry.load_entry(
            CATALOG.get("jrt-360m-30b"), "hf:hazyresearch/JRT-360M-30B@main", "cpu", dtype="int8"
        )


def test_list_cli_prints_every_model(capsys) -> None:
    assert registry.main(["--list", "--prompt-len", "1024"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED_NAMES + list(OPERATOR_OPS):
        assert name in out


# ---------------------------------------------------------------------------------------------
# Operators: bare attention kernels at the paper's shapes, for prefill_throughput
# ---------------------------------------------------------------------------------------------

OPERATOR_OPS = {
    "op-sdpa-flash": "sdpa_flash",
    "op-based-triton": "based_triton",
    "op-based-torch": "based_torch",
    "op-prefix-triton": "prefix_triton",
    "op-prefix-torch": "prefix_torch",
}


def test_operator_entries_have_the_paper_kernel_shape() -> None:
    operators = [entry for entry in CATALOG.models if entry.family == "operator"]
    assert {entry.name: entry.source.op for entry in operators} == OPERATOR_OPS
    for entry in operators:
        assert entry.dtype == "bfloat16" and entry.nominalParams == 0
        assert entry.config["heads"] == 16 and entry.config["featureDim"] == 16
        assert entry.config["valueDim"] == 64
        assert entry.config.get("encoderFraction") == (0.5 if "prefix" in entry.name else None)


@pytest.mark.parametrize("name", ["op-based-torch", "op-prefix-torch", "op-sdpa-flash"])
def test_operator_loads_without_weights_or_tokenizer(name: str) -> None:
    op = OPERATOR_OPS[name]
    loaded = registry.load_model(name, f"operator:{op}@v1", "cpu")
    assert loaded.tokenizer is None and loaded.model.op == op
    assert loaded.info.family == "operator" and loaded.info.parameters == 0
    # bf16 inputs; SDPA on a CPU worker runs (and says it runs) float32
    assert loaded.info.dtype == ("float32" if op == "sdpa_flash" else "bfloat16")
    if op == "sdpa_flash":  # a KV cache grows with the prompt
        assert loaded.state_bytes(2048) == 2 * loaded.state_bytes(1024) > 0
    else:  # 16 heads x (273 x 64 + 273) fp32 Taylor state
        assert loaded.state_bytes(2048) == loaded.state_bytes(1) == 16 * 273 * 65 * 4


@pytest.mark.parametrize(
    "revision",
    ["main", "operator:based_torch@v2", "operator:based_torch", "operator:sdpa_flash@v1"],
)
def test_operator_refuses_any_other_revision(revision: str) -> None:
    with pytest.raises(
        registry.RevisionMismatch, match=r"only revision is 'operator:based_torch@v1'"
    ):
        registry.load_model("op-based-torch", revision, "cpu")


def test_operator_version_this_worker_does_not_implement_is_refused() -> None:
    entry = CATALOG.get("op-based-torch")
    newer = entry.model_copy(
        update={"source": registry.OperatorSource(kind="operator", op="based_torch", version=2)}
    )
    with pytest.raises(registry.RevisionMismatch, match="v2 in the catalog.*implements v1"):
        registry.load_entry(newer, "operator:based_torch@v2", "cpu")


def test_triton_operator_on_a_cpu_worker_fails_clearly() -> None:
    from twice_inference.models.operators import OperatorUnavailable

    with pytest.raises(OperatorUnavailable, match="'based_triton' is a Triton kernel.*CUDA"):
        registry.load_model("op-based-triton", "operator:based_triton@v1", "cpu")


def test_operator_entries_are_validated() -> None:
    raw = json.loads(registry.CATALOG_PATH.read_text())
    (entry,) = [e for e in raw["models"] if e["name"] == "op-based-torch"]
    with pytest.raises(ValueError, match="family 'operator' goes with source kind 'operator'"):
        registry.CatalogEntry.model_validate({**entry, "family": "based"})
    with pytest.raises(ValueError, match="nominalParams must be > 0 for a model and 0"):
        registry.CatalogEntry.model_validate({**entry, "nominalParams": 5})
    with pytest.raises(ValueError, match="nominalParams must be > 0"):
        registry.CatalogEntry.model_validate({**raw["models"][0], "nominalParams": 0})
    bad_config = registry.CatalogEntry.model_validate(
        {**entry, "config": {**entry["config"], "heads": 0}}
    )
    with pytest.raises(ValueError, match="heads"):
        registry.load_entry(bad_config, "operator:based_torch@v1", "cpu")
    with pytest.raises(ValueError, match="encoderFraction is required for prefix ops"):
        registry.load_entry(
            bad_config.model_copy(update={"config": {**entry["config"], "encoderFraction": 0.5}}),
            "operator:based_torch@v1",
            "cpu",
        )


# ---------------------------------------------------------------------------------------------
# Random-weight debug models: no checkpoint, byte tokenizer, for smoke-testing the real tasks
# ---------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "recall"
DEBUG_FAMILIES = {
    "debug-attn-bytes": "transformer",
    "debug-based-bytes": "based",
    "debug-mamba2-bytes": "mamba2",
    "debug-jrt-bytes": "jrt_rnn",
}
# Sum of |weight| over the state dict at seed 0, so a changed initialiser or layout cannot go
# unnoticed under an unchanged revision (a sum, not a hash: CPUs may differ in the last bit).
DEBUG_WEIGHT_ABS_SUMS = {
    "debug-attn-bytes": 2156.2223,
    "debug-based-bytes": 2090.3384,
    "debug-mamba2-bytes": 4500.7215,
    "debug-jrt-bytes": 2188.1795,
}


def test_debug_entries_are_tiny_random_byte_models() -> None:
    from twice_inference.tokenizers import load_tokenizer

    debug = [entry for entry in CATALOG.models if entry.source.kind == "random"]
    assert {entry.name: entry.family for entry in debug} == DEBUG_FAMILIES
    for entry in debug:
        assert entry.source.tokenizer == "bytes-v1" and entry.dtype == "float32"
        assert entry.config["vocab_size"] == load_tokenizer("bytes-v1").vocab_size
        assert entry.config["d_model"] == 64
        assert entry.config.get("n_layers", entry.config.get("n_layer")) == 2
        assert "random weights" in entry.notes.lower()
        assert "accuracy is meaningless" in entry.notes
        assert registry.random_revision(entry.source.seed) == f"random:seed={entry.source.seed}"


def _state(loaded: registry.LoadedModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loaded.model.state_dict().items()}


def _fda_prompts(tokenizer) -> dict[str, list[int]]:
    from twice_inference.tasks.registry import build_task
    from twice_inference.tasks.strategies import parse_strategy

    params = {"dataDir": str(FIXTURES / "hazyresearch" / "based-fda"), "contextTokens": 200}
    task = build_task("fda", 2, params)
    prompts = {}
    for name in ("default", "jrt_prompt"):
        (example,) = task.examples(0, 1, tokenizer, parse_strategy(name, 1))
        assert tokenizer.decode(example.prompt_ids) == example.prompt_text
        prompts[name] = example.prompt_ids
    return prompts


@pytest.mark.parametrize("name", sorted(DEBUG_FAMILIES))
def test_debug_model_loads_identically_and_runs_a_real_task_prompt(name: str) -> None:
    first = registry.load_model(name, "random:seed=0", "cpu")
    torch.manual_seed(1234)  # the global RNG must not matter
    torch.randn(10)
    second = registry.load_model(name, "random:seed=0", "cpu")
    weights = _state(first)
    assert weights.keys() == _state(second).keys()
    assert all(torch.equal(weights[k], v) for k, v in _state(second).items())
    abs_sum = sum(float(t.double().abs().sum()) for t in weights.values())
    assert abs_sum == pytest.approx(DEBUG_WEIGHT_ABS_SUMS[name], rel=1e-6)
    assert first.info.revision == "random:seed=0" and first.info.family == DEBUG_FAMILIES[name]
    assert first.info.dtype == "float32"
    assert first.info.parameters == CATALOG.get(name).nominalParams

    tokenizer = first.tokenizer
    assert tokenizer is not None and tokenizer.name == "bytes-v1"
    model = first.model
    for strategy, prompt in _fda_prompts(tokenizer).items():
        ids = torch.tensor([prompt])
        mask = torch.ones_like(ids)
        # The parallel form is the slow reference for the recurrent one.
        with torch.no_grad():
            logits, state = model.prefill(ids, mask)
            next_id = logits.argmax(dim=-1)
            step_logits, _ = model.step(next_id, state)
            extended = torch.cat([ids, next_id[:, None]], dim=1)
            reference = model(ids, mask)[:, -1]
            step_reference = model(extended, torch.ones_like(extended))[:, -1]
        assert logits.shape == (1, model.vocab_size) and torch.isfinite(step_logits).all()
        assert rel_error(logits, reference) < 1e-4, strategy
        encoder_length = CATALOG.get(name).config.get("encoder_length", 0)
        # JRT-RNN's encoder reads the first M tokens non-causally, so a generated token inside
        # that region is not what the parallel form over prompt + token computes.
        if len(prompt) >= encoder_length:
            assert rel_error(step_logits, step_reference) < 1e-4, strategy
        if name == "debug-jrt-bytes" and strategy == "jrt_prompt":
            assert len(prompt) > encoder_length  # both the encoder and decoder regions run


@pytest.mark.parametrize("revision", ["main", "local", "random:seed=1", "random:seed=00", ""])
def test_debug_model_refuses_any_other_revision(revision: str) -> None:
    with pytest.raises(registry.RevisionMismatch, match=r"only revision is 'random:seed=0'"):
        registry.load_model("debug-based-bytes", revision, "cpu")


def test_random_source_seed_changes_weights_and_tokenizer_must_fit() -> None:
    entry = CATALOG.get("debug-jrt-bytes")
    reseeded = entry.model_copy(
        update={"source": registry.RandomSource(kind="random", seed=1, tokenizer="bytes-v1")}
    )
    one = registry.load_entry(reseeded, "random:seed=1", "cpu")
    zero = registry.load_entry(entry, "random:seed=0", "cpu")
    assert not torch.equal(
        one.model.state_dict()["embeddings.weight"], zero.model.state_dict()["embeddings.weight"]
    )
    too_small = entry.model_copy(update={"config": {**entry.config, "vocab_size": 200}})
    with pytest.raises(ValueError, match="bytes-v1.*257 ids.*200 logits"):
        registry.load_entry(too_small, "random:seed=0", "cpu")
    with pytest.raises(ValueError, match="seed"):
        registry.RandomSource.model_validate({"kind": "random", "seed": -1, "tokenizer": "x"})


def test_import_families_imports_each_and_names_those_that_cannot(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(registry.FAMILIES, "nowhere", "no_such_module:build")
    assert registry.import_families() == ["nowhere"]
    for family, target in registry.FAMILIES.items():
        if family != "nowhere":
            assert f"twice_inference.models.{target.split(':')[0]}" in sys.modules
