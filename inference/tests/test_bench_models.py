"""The model benchmark (bench.models) end to end on CPU at tiny configs: every family gets a table row, float32
parallel vs recurrent agreement < 1e-4, throughput numbers are positive, bf16 runs report a
precision floor, one broken family does not stop the others, and the CLI writes its JSON.
Throughput mode: both paths of Based/JRT-RNN (the kernel one under the Triton interpreter), OOM
recorded per point, runs capped and points skipped to fit the budgets."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_configs import HYBRID, KERNEL_HYBRID, VOCAB

from twice_inference.bench import model_check, model_throughput
from twice_inference.bench import models as bench_models
from twice_inference.bench.model_check import run
from twice_inference.bench.model_common import FAMILY_ORDER, SMALLEST_PAPER_MODEL
from twice_inference.bench.model_throughput import run_throughput

TINY: dict[str, dict] = {
    "transformer": dict(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, mlp_hidden=48),
    "based": HYBRID,
    "jrt_rnn": {**HYBRID, "encoder_length": 20},  # > check_len: the check must lengthen itself
    "mamba": {"d_model": 32, "n_layer": 2, "vocab_size": VOCAB},
    "mamba2": {
        "d_model": 32,
        "n_layer": 2,
        "vocab_size": VOCAB,
        "ssm_cfg": {"layer": "Mamba2", "d_state": 8, "headdim": 16, "chunk_size": 8},
    },
    "gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "vocab_size": VOCAB},
}
SMALL = dict(device="cpu", seq=32, batch=2, check_len=16, budget_s=5.0)


def test_whole_path_on_cpu_float32() -> None:
    report = run("all", configs_override=TINY, dtype=torch.float32, **SMALL)
    rows = {row["family"]: row for row in report["rows"]}
    assert list(rows) == FAMILY_ORDER
    for family, row in rows.items():
        assert row["errors"] == [], (family, row["errors"])
        assert row["err_prefill"] < 1e-4 and row["err_steps"] < 1e-4, (family, row)
        assert row["check"] == "PASS" and row["precision_floor"] is None
        assert row["params"] > 0 and row["state_bytes"] > 0
        prefill = row["prefill"]
        assert prefill["tokens_per_s"] > 0 and prefill["ms_per_prefill"] > 0
        assert prefill["timed_runs"] >= 1 and prefill["batch"] == 2
    assert rows["jrt_rnn"]["check_len"] >= 20 + 2  # M real tokens even in the padded row
    table = report["table"]
    for family in FAMILY_ORDER:
        assert f"| {family} | {family}-override |" in table
    assert table.count("PASS") == len(FAMILY_ORDER)


def test_bfloat16_reports_precision_floor_and_passes() -> None:
    families = ["transformer", "mamba2"]
    report = run(families, configs_override=TINY, dtype="bfloat16", **SMALL)
    for row in report["rows"]:
        assert row["errors"] == []
        assert row["precision_floor"] is not None and row["precision_floor"] > 0
        assert row["tolerance"] >= 2e-2
        assert row["check"] == "PASS", row


def test_a_broken_family_is_reported_and_the_rest_continue() -> None:
    broken = {**TINY, "based": {**HYBRID, "d_model": 33}}  # not divisible by the heads
    report = run(["based", "gla"], configs_override=broken, dtype=torch.float32, **SMALL)
    based, gla = report["rows"]
    assert based["errors"] and based["errors"][0].startswith("build:")
    assert gla["errors"] == [] and gla["check"] == "PASS"
    assert "| based |" in report["table"] and "| gla |" in report["table"]


def test_oom_halves_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = model_check.time_prefill_at

    def fake_oom_above_one(model, seq, batch, device, budget_s, seed):
        if batch > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, seq, batch, device, budget_s, seed)

    monkeypatch.setattr(model_check, "time_prefill_at", fake_oom_above_one)
    report = run(["mamba"], configs_override=TINY, dtype=torch.float32, **SMALL)
    prefill = report["rows"][0]["prefill"]
    assert prefill["batch"] == 1 and "OOM at batch 2" in prefill["notes"]


def test_catalog_names_exist_and_unknown_family_is_rejected() -> None:
    from twice_inference.models.registry import load_catalog

    catalog = load_catalog()
    for family, name in SMALLEST_PAPER_MODEL.items():
        assert catalog.get(name).family == family
    with pytest.raises(ValueError, match="unknown"):
        run(["rwkv"], device="cpu")


def test_cli_writes_json(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI reads the catalog; shrink the one family it runs so the test stays fast.
    monkeypatch.setattr(
        model_check, "run", lambda *a, **k: run(*a, **{**k, "configs_override": TINY})
    )
    out = tmp_path / "bench.json"
    argv = ["--families", "gla", "--device", "cpu", "--dtype", "float32", "--seq", "16"]
    code = bench_models.main(argv + ["--batch", "2", "--check-len", "8", "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == 0 and report["rows"][0]["check"] == "PASS"
    assert report["meta"]["seq"] == 16


def test_slow_runs_are_cut_to_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_check, "SLOW_RUN_S", 0.0)  # every run counts as slow
    report = run(["gla"], configs_override=TINY, dtype=torch.float32, **SMALL)
    prefill = report["rows"][0]["prefill"]
    assert prefill["warmup_runs"] == 1 and any("slow" in n for n in prefill["notes"])
    tiny_budget = {**SMALL, "budget_s": 1e-6}  # even the batch-1 probe is over budget
    report = run(["gla"], configs_override=TINY, dtype=torch.float32, **tiny_budget)
    prefill = report["rows"][0]["prefill"]
    assert prefill["batch"] == 1 and prefill["timed_runs"] == 1
    assert "too slow" in prefill["notes"][0] and "too slow" in report["table"]


# ---------------------------------------------------------------------------------------------
# Throughput mode. Based/JRT-RNN use a hybrid the kernels fit (feature dim 16, value dim 32), so
# their "kernel" rows really run the Triton kernels, under the interpreter on CPU.
# ---------------------------------------------------------------------------------------------

KERNEL_TINY = {
    **TINY,
    "based": KERNEL_HYBRID,
    "jrt_rnn": {**KERNEL_HYBRID, "encoder_length": 16},
}
THROUGHPUT_SMALL = dict(
    device="cpu", lengths=[24, 40], batch=2, runs=3, point_budget_s=20.0, total_budget_s=120.0
)


@pytest.mark.triton_interpreter
def test_throughput_times_every_family_and_both_paths_of_the_kernel_families() -> None:
    families = ["transformer", "based", "jrt_rnn", "mamba2"]
    report = run_throughput(families, KERNEL_TINY, **THROUGHPUT_SMALL)
    paths = [(row["family"], row["path"]) for row in report["rows"]]
    assert paths == [
        ("transformer", "default"),
        ("based", "kernel"),
        ("based", "torch"),
        ("jrt_rnn", "kernel"),
        ("jrt_rnn", "torch"),
        ("mamba2", "default"),
    ]
    for row in report["rows"]:
        assert row["errors"] == [] and row["params"] > 0, row
        assert list(row["points"]) == ["24", "40"]
        for seq, point in row["points"].items():
            assert point["timed_runs"] == 3 and point["notes"] == [], (row["path"], point)
            assert point["tokens_per_s"] == pytest.approx(
                int(seq) * 2 / (point["ms_per_prefill"] / 1000.0)
            )
            low, high = point["spread_ms"]
            assert low <= point["ms_per_prefill"] <= high
        if row["family"] in ("based", "jrt_rnn"):
            # Non-zero: the kernel path was really taken; small: it computes the same model.
            assert 0.0 < row["kernel_vs_torch_rel_err"] < 2e-2
    meta = report["meta"]
    assert meta["lengths"] == [24, 40] and meta["batch"] == 2 and meta["mode"] == "throughput"
    assert meta["torch"] == torch.__version__ and meta["triton"] and meta["driver"] is None
    table = report["table"]
    assert "| tok/s @24 | ms @24 | peak GiB @24 |" in table
    assert "| jrt_rnn | jrt_rnn-override |" in table and "| based | based-override |" in table
    assert "- based @40: kernel path" in table and "kernel vs torch path" in table


def test_throughput_records_oom_and_keeps_going(monkeypatch: pytest.MonkeyPatch) -> None:
    real = model_throughput.time_point

    def oom_at_40(model, seq, **kwargs):  # type: ignore[no-untyped-def]
        if seq == 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB (simulated)")
        return real(model, seq=seq, **kwargs)

    monkeypatch.setattr(model_throughput, "time_point", oom_at_40)
    report = run_throughput(["gla", "mamba"], KERNEL_TINY, **THROUGHPUT_SMALL)
    for row in report["rows"]:
        assert row["points"]["24"]["tokens_per_s"] > 0
        assert row["points"]["40"]["oom"] is True
    assert "| OOM | - | - |" in report["table"] and "simulated" in report["table"]


def test_throughput_caps_runs_and_skips_what_would_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def one_second(fn, device):  # type: ignore[no-untyped-def]  # every prefill "takes" 1 s
        fn()
        return 1.0

    monkeypatch.setattr(model_throughput, "time_once", one_second)
    small = {**THROUGHPUT_SMALL, "lengths": [16], "runs": 10}
    capped = run_throughput(["gla"], KERNEL_TINY, **{**small, "point_budget_s": 4.0})
    point = capped["rows"][0]["points"]["16"]
    assert point["timed_runs"] == 4 and "capped: 4 timed runs, not 10" in point["notes"][0]
    skipped = run_throughput(["gla"], KERNEL_TINY, **{**small, "point_budget_s": 1.5})
    point = skipped["rows"][0]["points"]["16"]  # batch 2 x 1 s probe > 1.5 s
    assert point["skipped"] and "skipped: a batch-1 prefill took 1.00 s" in point["notes"][0]
    spent = run_throughput(["gla"], KERNEL_TINY, **{**small, "total_budget_s": 0.0})
    assert spent["rows"][0]["points"]["16"]["notes"] == ["total budget spent"]
    assert "| skipped | - | - |" in spent["table"]


def test_throughput_cli_writes_json(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        model_throughput,
        "run_throughput",
        lambda *a, **k: run_throughput(*a, **{**k, "configs_override": KERNEL_TINY}),
    )
    out = tmp_path / "throughput.json"
    argv = ["--mode", "throughput", "--families", "gla", "--device", "cpu", "--lengths", "8,16"]
    code = bench_models.main(argv + ["--batch", "2", "--runs", "2", "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == 0 and report["meta"]["lengths"] == [8, 16] and report["meta"]["runs"] == 2
    assert report["rows"][0]["points"]["16"]["timed_runs"] == 2
    with pytest.raises(SystemExit):
        bench_models.main(["--mode", "throughput", "--device", "cpu", "--lengths", "2k"])
