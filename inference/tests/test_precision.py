"""Per-model precision as the paper's harness ran it: the hazy attention checkpoints keep their
fp16 weights and run under bf16 autocast (``CatalogEntry.autocast``), on the CPU on a tiny
Transformer++: the weights stay fp16 bit for bit, every matmul of a forward pass runs in bf16
while embeddings and norms stay fp16, the timed prefill runs under the same precision, and an
``execution.dtype`` override runs plainly in the dtype it names."""

from __future__ import annotations

import torch

from twice_inference.engine.throughput import lm_prefill_workload
from twice_inference.models.registry import CatalogEntry, load_catalog, load_entry

CONFIG = {"vocab_size": 257, "d_model": 32, "n_layers": 2, "n_heads": 4, "mlp_hidden": 64}


def _entry(**overrides: object) -> CatalogEntry:
    fields: dict[str, object] = {
        "name": "tiny-attn-fp16",
        "family": "transformer",
        "source": {"kind": "random", "seed": 3, "tokenizer": "bytes-v1"},
        "dtype": "float16",
        "autocast": "bfloat16",
        "config": CONFIG,
        "nominalParams": 1,
    }
    return CatalogEntry.model_validate({**fields, **overrides})


def _dtypes_seen(model: torch.nn.Module, run) -> dict[str, set[torch.dtype]]:
    """Output dtypes of every Linear, Embedding and norm during ``run()``."""
    seen: dict[str, set[torch.dtype]] = {"linear": set(), "embedding": set(), "norm": set()}

    def record(kind: str):
        def hook(_module, _inputs, output) -> None:
            seen[kind].add(output.dtype)

        return hook

    handles = []
    for module in model.modules():
        kind = (
            "linear"
            if isinstance(module, torch.nn.Linear)
            else "embedding"
            if isinstance(module, torch.nn.Embedding)
            else "norm"
            if "Norm" in type(module).__name__
            else None
        )
        if kind:
            handles.append(module.register_forward_hook(record(kind)))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def test_attention_checkpoints_are_fp16_under_bf16_autocast_in_the_catalog() -> None:
    for name in ("attn-1b", "attn-1b-50bn", "attn-360m-30b"):
        entry = load_catalog().get(name)
        assert (entry.dtype, entry.autocast) == ("float16", "bfloat16"), name


def test_weights_stay_fp16_and_matmuls_run_in_bf16() -> None:
    loaded = load_entry(_entry(), "random:seed=3", "cpu", with_tokenizer=False)
    assert loaded.autocast is torch.bfloat16
    params = list(loaded.model.parameters())  # type: ignore[union-attr]
    assert params and all(p.dtype is torch.float16 for p in params)
    # the same seed at float32, rounded once to fp16: loading did not pass through bf16
    reference = load_entry(
        _entry(dtype="float32", autocast=None), "random:seed=3", "cpu", with_tokenizer=False
    )
    for ours, theirs in zip(params, reference.model.parameters(), strict=True):  # type: ignore[union-attr]
        assert torch.equal(ours, theirs.to(torch.float16))

    ids = torch.randint(0, 257, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids, dtype=torch.bool)
    model = loaded.model

    def forward() -> None:
        with loaded.compute():
            model.prefill(ids, mask)  # type: ignore[union-attr]

    seen = _dtypes_seen(model, forward)  # type: ignore[arg-type]
    assert seen["linear"] == {torch.bfloat16}
    assert seen["embedding"] == {torch.float16}
    assert seen["norm"] and torch.bfloat16 not in seen["norm"]

    # without the model's compute precision the same weights would run fp16 matmuls
    plain = _dtypes_seen(model, lambda: model.prefill(ids, mask))  # type: ignore[arg-type, union-attr]
    assert plain["linear"] == {torch.float16}


def test_the_timed_prefill_runs_under_the_models_precision() -> None:
    loaded = load_entry(_entry(), "random:seed=3", "cpu", with_tokenizer=False)
    model = loaded.model
    workload = lm_prefill_workload(model, 1, 8, 0, "float16", loaded.compute)  # type: ignore[arg-type]
    seen = _dtypes_seen(model, workload.run)  # type: ignore[arg-type]
    assert seen["linear"] == {torch.bfloat16}


def test_a_dtype_override_runs_plainly() -> None:
    loaded = load_entry(_entry(), "random:seed=3", "cpu", dtype="float32", with_tokenizer=False)
    assert loaded.autocast is None
    ids = torch.zeros((1, 4), dtype=torch.long)
    model = loaded.model

    def forward() -> None:
        with loaded.compute():
            model.prefill(ids, torch.ones_like(ids, dtype=torch.bool))  # type: ignore[union-attr]

    assert _dtypes_seen(model, forward)["linear"] == {torch.float32}  # type: ignore[arg-type]
