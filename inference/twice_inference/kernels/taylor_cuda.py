"""The CUDA C++ Taylor prefill (``taylor_cuda.cu``): build, load and launch.

The kernel is compiled from the source in this folder with the machine's ``nvcc`` into a shared
library, cached under ``~/.cache/twice/cuda`` (``TWICE_CUDA_CACHE`` overrides) by a hash of the
source, the compiler's version and the flags, and called through ctypes on torch's current
stream: no torch headers, so a build takes seconds. It targets Hopper (``sm_90a``); elsewhere, or
when no ``nvcc`` is found or the build fails, ``load`` returns None and the ops keep the Triton
kernels (``based_triton``), which stay the portable path. ``prefer_cuda`` is the per-shape choice
between the two, from the H200 measurements in NOTES.md (v4).

    python -m twice_inference.kernels.taylor_cuda   # builds (or finds) the library, prints its path
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from twice_inference.kernels.based_triton import validated

SOURCE = Path(__file__).with_name("taylor_cuda.cu")
ARCH = "sm_90a"  # wgmma-era Hopper; the kernel itself uses mma.sync, ldmatrix and cp.async
FLAGS = ("-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "--expt-relaxed-constexpr")
CACHE_ENV = "TWICE_CUDA_CACHE"
VALUE_SLICE = 64  # value columns per CTA: Dv must be a multiple
CTAS_PER_SM = (1, 2)  # the two register budgets built (taylor_cuda.cu)
# Fewer CTAs than this and the Triton path, which cuts sequences into segments run in parallel
# (taylor_state), beats one chain per CTA (NOTES.md v4).
MIN_CTAS_FOR_CUDA = 64
MAX_GRID_Y = 65535


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "twice" / "cuda")


def find_nvcc() -> Path | None:
    """nvcc from CUDA_HOME / CUDA_PATH, the PATH, or /usr/local/cuda; None when there is none."""
    for env in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(env)
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return Path(root) / "bin" / "nvcc"
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    default = Path("/usr/local/cuda/bin/nvcc")
    return default if default.is_file() else None


def nvcc_command(nvcc: Path, arch: str, output: Path) -> list[str]:
    """The compile command. ``arch`` must look like sm_90a / sm_90 (checked: it reaches a
    subprocess)."""
    if not re.fullmatch(r"sm_\d{2,3}a?", arch):
        raise ValueError(f"arch must look like 'sm_90a', got {arch!r}")
    return [str(nvcc), *FLAGS, f"-arch={arch}", str(SOURCE), "-o", str(output)]


def library_path(nvcc: Path, arch: str = ARCH) -> Path:
    """Where the library for this source, compiler and arch lives in the cache."""
    version = subprocess.run(
        [str(nvcc), "--version"], capture_output=True, text=True, check=True
    ).stdout
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), version, arch, *FLAGS]).encode()
    ).hexdigest()[:16]
    return cache_dir() / f"taylor_cuda-{key}.so"


def build(nvcc: Path | None = None, arch: str = ARCH) -> Path:
    """Compiles the library unless the cache has it; returns its path. Raises RuntimeError with
    the compiler's output when the build fails. Written to a temporary name and renamed, so a
    crashed or concurrent build never leaves a half-written library under the final name."""
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise RuntimeError("no nvcc found (set CUDA_HOME or put nvcc on the PATH)")
    target = library_path(nvcc, arch)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / target.name
        done = subprocess.run(nvcc_command(nvcc, arch, partial), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nvcc failed ({done.returncode}):\n{done.stderr[-4000:]}")
        os.replace(partial, target)
    return target


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    lib.taylor_prefill.argtypes = [ptr] * 6 + [i32] * 5 + [ctypes.c_size_t]
    lib.taylor_prefill.restype = i32
    lib.taylor_prefill_smem_bytes.argtypes = []
    lib.taylor_prefill_smem_bytes.restype = i32
    return lib


@functools.cache
def load() -> ctypes.CDLL | None:
    """The built library, or None where the CUDA kernel cannot run here (no CUDA device, not a
    Hopper GPU, no nvcc, or a failed build: warned once, the Triton kernel takes over)."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] != 9:
        return None
    nvcc = find_nvcc()
    if nvcc is None:
        return None
    try:
        return _bind(ctypes.CDLL(str(build(nvcc))))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
        warnings.warn(f"CUDA Taylor kernel unavailable, using Triton: {err}", stacklevel=2)
        return None


def checked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None,
    v_enc: torch.Tensor | None,
    ctas_per_sm: int,
) -> tuple[torch.Tensor, ...]:
    """The Triton kernels' checks (``based_triton.validated``: bf16, [B, H, N, 16] q/k, shapes
    that agree, k_enc/v_enc together) with a value slice of 64, plus what this kernel adds: one
    device, non-empty sequences, 32-bit offsets inside a head and the grid's height. Raises
    ValueError naming the argument; returns contiguous (q, k, v, k_enc, v_enc)."""
    if ctas_per_sm not in (0, *CTAS_PER_SM):
        raise ValueError(f"ctas_per_sm must be 0 (auto) or one of {CTAS_PER_SM}, got {ctas_per_sm}")
    q, k, v, k_enc, v_enc = validated(q, k, v, k_enc, v_enc, VALUE_SLICE)
    named = {"k": k, "v": v, "k_enc": k_enc, "v_enc": v_enc}
    for name, x in named.items():
        if x is not None and x.device != q.device:
            raise ValueError(f"{name} is on {x.device}, q on {q.device}")
    n, m = q.shape[2], 0 if k_enc is None else k_enc.shape[2]
    if n == 0 or (k_enc is not None and m == 0):
        raise ValueError(f"empty sequence: {n} tokens, encoder {m}")
    # Offsets inside one head are 32-bit in the kernel (the head's base is 64-bit); heads map to
    # the grid's y dimension.
    if max(n, m) * v.shape[-1] >= 2**31:
        raise ValueError(f"sequence too long for the kernel: {max(n, m)} tokens x {v.shape[-1]}")
    if q.shape[0] * q.shape[1] > MAX_GRID_Y:
        raise ValueError(f"batch x heads {q.shape[0] * q.shape[1]} exceeds {MAX_GRID_Y}")
    return q, k, v, k_enc, v_enc


def taylor_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None = None,
    v_enc: torch.Tensor | None = None,
    *,
    ctas_per_sm: int = 0,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal Based linear attention prefill (with k_enc/v_enc: prefix linear attention, the
    encoder folded into the state first). Same contract and numerics as
    ``based_triton.based_causal_attention`` / ``prefix_triton.prefix_linear_attention``; needs
    ``load()`` to have succeeded (a CUDA Hopper GPU). ``ctas_per_sm``: the register budget (1 or
    2 CTAs per SM; 0 picks by ``ctas_per_sm_for``)."""
    q, k, v, ke, ve = checked(q, k, v, k_enc, v_enc, ctas_per_sm)
    if q.device.type != "cuda":
        raise ValueError(f"the CUDA kernel needs CUDA tensors, got {q.device}")
    lib = load()
    if lib is None:
        raise RuntimeError("the CUDA Taylor kernel is not available on this machine")
    if out is not None and (
        out.shape != v.shape or out.dtype != v.dtype or not out.is_contiguous()
    ):
        raise ValueError(f"out must be a contiguous bf16 tensor of shape {tuple(v.shape)}")
    y = out if out is not None else torch.empty_like(v)
    b, h, n, dv = v.shape
    m = ke.shape[2] if ke is not None else 0
    ctas_per_sm = ctas_per_sm or ctas_per_sm_for(b * h * (dv // VALUE_SLICE), sm_count(q.device))
    with torch.cuda.device(q.device):
        err = lib.taylor_prefill(
            q.data_ptr(),
            k.data_ptr(),
            v.data_ptr(),
            y.data_ptr(),
            ke.data_ptr() if ke is not None else None,
            ve.data_ptr() if ve is not None else None,
            b * h,
            n,
            m,
            dv,
            ctas_per_sm,
            torch.cuda.current_stream().cuda_stream,
        )
    if err != 0:
        raise RuntimeError(f"taylor_prefill launch failed: cudaError {err}")
    return y


def prefer_cuda(batch_heads: int, dv: int) -> bool:
    """Whether the CUDA kernel is the faster at this shape (NOTES.md v4): everywhere but with
    few CTAs, where the Triton path's sequence parallelism wins."""
    return batch_heads * (dv // VALUE_SLICE) >= MIN_CTAS_FOR_CUDA


def ctas_per_sm_for(ctas: int, sms: int) -> int:
    """The register budget: with no more CTAs than SMs each SM runs one, and the uncapped build
    (no spills, shorter chain) is the faster; past that, two per SM at 128 registers."""
    return 1 if ctas <= sms else 2


@functools.cache
def sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def cuda_applies(v: torch.Tensor) -> bool:
    """The CUDA kernel can take these (already kernel-eligible) inputs here: CUDA tensors, Dv a
    multiple of its value slice, and a built library."""
    return v.device.type == "cuda" and v.shape[-1] % VALUE_SLICE == 0 and load() is not None


def main() -> int:
    try:
        print(build())
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
