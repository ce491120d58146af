"""The model registry: every catalog entry builds on the meta device with about its nominal size,
weights load from a Hugging Face layout directory (hazy key names) and from the zoo layout, missing
weights name the path, and the ``--list`` CLI prints the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from twice_inference.models import registry
from twice_inference.models.layers import rel_error

EXPECTED_NAMES = [
    "attn-1b",
    "mamba-1b",
    "based-1b",
    "attn-1b-50bn",
    "mamba-1b-50b",
    "based-1b-50b",
    "gla-1.3b-100b",
    "gla-2.7b-100b",
    "mamba-130m",
    "mamba-370m",
    "mamba-1.4b",
    "mamba-2.8b",
    "mamba2-130m",
    "mamba2-370m",
    "mamba2-1.3b",
    "mamba2-2.7b",
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


@pytest.mark.parametrize("entry", CATALOG.models, ids=lambda e: e.name)
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

    loaded = registry.load_entry(entry, "main", "cpu", with_tokenizer=False)

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
        registry.load_entry(entry, "main", "cpu")
    (tmp_path / "hazyresearch" / "JRT-360M-30B").mkdir(parents=True)
    with pytest.raises(registry.WeightsMissing, match="no \\*.safetensors or pytorch_model.bin"):
        registry.load_entry(entry, "main", "cpu")


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

    loaded = registry.load_entry(entry, "local", "cpu")

    assert loaded.tokenizer is not None and loaded.tokenizer.name == registry.ZOO_TOKENIZER
    ids = torch.randint(0, 40, (1, 5))
    with torch.no_grad():
        assert rel_error(loaded.model(ids), source_model(ids)) < 1e-6


def test_load_model_rejects_unknown_names_and_dtypes() -> None:
    with pytest.raises(KeyError, match="not-a-model"):
        registry.load_model("not-a-model", "main", "cpu")
    with pytest.raises(ValueError, match="dtype"):
        registry.load_entry(CATALOG.get("jrt-360m-30b"), "main", "cpu", dtype="int8")


def test_list_cli_prints_every_model(capsys) -> None:
    assert registry.main(["--list", "--prompt-len", "1024"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED_NAMES:
        assert name in out
