"""The CUDA Taylor prefill's host side (twice_inference.kernels.taylor_cuda): input validation
(the Triton kernels' checks plus its own), the build command, the cache location and the
per-shape choice between it and the Triton kernels. The kernel itself needs a Hopper GPU: its checks against the float64 reference (ragged
lengths, encoder, two value slices, the recurrent form, padded inputs) run in
``bench.kernels`` (``--suite check``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from twice_inference.kernels import taylor_cuda, taylor_prefill


def _bf16(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, dtype=torch.bfloat16)


def _good() -> dict[str, torch.Tensor]:
    return {
        "q": _bf16(2, 3, 10, 16),
        "k": _bf16(2, 3, 10, 16),
        "v": _bf16(2, 3, 10, 64),
        "k_enc": _bf16(2, 3, 5, 16),
        "v_enc": _bf16(2, 3, 5, 64),
    }


def _check(t: dict[str, torch.Tensor | None], ctas_per_sm: int = 0) -> None:
    taylor_cuda.checked(
        t["q"],
        t["k"],
        t["v"],
        t.get("k_enc"),
        t.get("v_enc"),
        ctas_per_sm,  # type: ignore[arg-type]
    )


def test_accepts_the_kernels_shapes() -> None:
    _check(_good())
    _check(_good() | {"k_enc": None, "v_enc": None}, ctas_per_sm=1)
    _check(_good() | {"v": _bf16(2, 3, 10, 128), "v_enc": _bf16(2, 3, 5, 128)}, ctas_per_sm=2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q": torch.zeros(2, 3, 10, 16)}, "q must be bfloat16, got torch.float32"),
        ({"k": _bf16(2, 3, 10)}, r"k must be \[B, H, N, D\], got shape \(2, 3, 10\)"),
        ({"q": _bf16(2, 3, 10, 8)}, "q last dim must be 16, got 8"),
        ({"v": _bf16(2, 3, 10, 32), "v_enc": _bf16(2, 3, 5, 32)}, "value dim 32 not divisible"),
        ({"v_enc": _bf16(2, 3, 5, 128)}, "v_enc last dim must be 64, got 128"),
        ({"k": _bf16(2, 4, 10, 16)}, r"k batch/heads \(2, 4\) != q's \(2, 3\)"),
        ({"k": _bf16(2, 3, 9, 16)}, "q/k/v lengths differ: 10, 9, 10"),
        ({"v_enc": None}, "k_enc and v_enc must be given together"),
        ({"k_enc": _bf16(2, 3, 4, 16)}, "k_enc length 4 != v_enc length 5"),
        ({"k_enc": _bf16(2, 3, 0, 16), "v_enc": _bf16(2, 3, 0, 64)}, "10 tokens, encoder 0"),
        ({"q": _bf16(2, 3, 0, 16), "k": _bf16(2, 3, 0, 16), "v": _bf16(2, 3, 0, 64)}, "0 tokens"),
    ],
)
def test_refuses_what_the_kernel_cannot_take(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _check(_good() | change)


def test_refuses_an_unknown_register_budget() -> None:
    with pytest.raises(
        ValueError, match=r"ctas_per_sm must be 0 \(auto\) or one of \(1, 2\), got 3"
    ):
        _check(_good(), ctas_per_sm=3)


def test_refuses_lengths_past_32_bit_offsets() -> None:
    long = torch.empty(1, 1, 2**25, 64, dtype=torch.bfloat16, device="meta")
    qk = torch.empty(1, 1, 2**25, 16, dtype=torch.bfloat16, device="meta")
    with pytest.raises(ValueError, match="sequence too long for the kernel: 33554432 tokens x 64"):
        taylor_cuda.checked(qk, qk, long, None, None, 0)


def test_cpu_tensors_never_reach_the_library() -> None:
    t = _good()
    with pytest.raises(ValueError, match="needs CUDA tensors, got cpu"):
        taylor_cuda.taylor_prefill(t["q"], t["k"], t["v"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_no_library_without_a_gpu() -> None:
    assert taylor_cuda.load() is None
    assert not taylor_prefill.use_cuda(_good()["v"])


def test_build_command_names_source_target_and_output(tmp_path: Path) -> None:
    out = tmp_path / "lib.so"
    cmd = taylor_cuda.nvcc_command(Path("/opt/cuda/bin/nvcc"), "sm_90a", out)
    assert cmd[0] == "/opt/cuda/bin/nvcc"
    assert "-arch=sm_90a" in cmd and str(taylor_cuda.SOURCE) in cmd
    assert cmd[-2:] == ["-o", str(out)]
    assert taylor_cuda.SOURCE.is_file()


@pytest.mark.parametrize("arch", ["90a", "sm_90a; rm -rf /", "compute_90", "sm_9", ""])
def test_build_command_refuses_a_malformed_arch(arch: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch must look like 'sm_90a'"):
        taylor_cuda.nvcc_command(Path("nvcc"), arch, tmp_path / "x.so")


def test_build_without_nvcc_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(taylor_cuda, "find_nvcc", lambda: None)
    with pytest.raises(RuntimeError, match="no nvcc found"):
        taylor_cuda.build()


def test_nvcc_is_found_under_cuda_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_text("")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert taylor_cuda.find_nvcc() == nvcc


def test_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(taylor_cuda.CACHE_ENV, str(tmp_path))
    assert taylor_cuda.cache_dir() == tmp_path
    monkeypatch.delenv(taylor_cuda.CACHE_ENV)
    assert taylor_cuda.cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "twice" / "cuda"


def test_shape_choice_follows_the_measurements() -> None:
    # H200, H = 16, Dv = 64 (NOTES.md v4): Triton (sequence-parallel) at B = 2, CUDA from B = 4.
    assert not taylor_cuda.prefer_cuda(2 * 16, 64)
    assert taylor_cuda.prefer_cuda(4 * 16, 64)
    assert taylor_cuda.prefer_cuda(2 * 16, 128)  # two value slices: 64 CTAs
    # One CTA per SM runs the uncapped build; past the SM count, two per SM at 128 registers.
    assert taylor_cuda.ctas_per_sm_for(128, 132) == 1
    assert taylor_cuda.ctas_per_sm_for(256, 132) == 2
