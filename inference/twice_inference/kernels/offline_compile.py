"""Offline register / spill report for the Taylor kernels: compiles each (kernel, config) for an
H100/H200 (sm_90a) with `triton.compile`, no GPU needed, and reads the bundled `ptxas -v`.

Pointers and the lengths carry `tt.divisibility` 16 as on the GPU run (all benchmark sizes are
multiples of 16); without it the loads compile to scalar b16 and the numbers differ. Run:
`python -m twice_inference.kernels.offline_compile` (a few minutes on a laptop core). Not tested:
a diagnostic tool whose output is recorded in NOTES.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

REGISTERS_PER_SM, MAX_THREADS_PER_SM, SMEM_PER_SM = 65536, 2048, 228 * 1024

# (block_c, block_dv, num_warps, num_stages, maxnreg); maxnreg 0 leaves ptxas free (it then takes
# ~255 registers whatever the kernel needs, which caps a 4-warp kernel at 2 programs per SM).
Config = tuple[int, int, int, int, int]
SYMMETRIC_CONFIGS: list[Config] = [
    (64, 32, 4, 1, 0),
    (64, 32, 4, 1, 168),
    (64, 32, 4, 1, 144),
    (64, 32, 4, 1, 128),
    (64, 16, 4, 1, 168),
    (64, 16, 4, 1, 128),
    (64, 64, 4, 1, 168),
    (32, 32, 4, 1, 128),
    (64, 32, 8, 1, 128),
    (64, 64, 8, 1, 128),
    (64, 32, 4, 2, 168),
]
FULL_CONFIGS: list[Config] = [(64, 32, 4, 1, 0), (64, 64, 8, 1, 0), (64, 32, 4, 1, 168)]
ENCODER_CONFIGS: list[Config] = [(64, 64, 4, 1, 0), (64, 64, 8, 1, 0), (64, 64, 4, 1, 168)]


def _divisible(indices: list[int]) -> dict[tuple[int, ...], list[list[Any]]]:
    return {(i,): [["tt.divisibility", 16]] for i in indices}


def _specs() -> list[tuple[str, Callable[[], Any], dict[str, Any]]]:
    """(label, kernel, compile arguments) for every kernel and config of interest."""
    from twice_inference.kernels.based_triton import taylor_linear_attention_fwd
    from twice_inference.kernels.symmetric_triton import (
        symmetric_causal_fwd,
        symmetric_encoder_state,
    )

    specs = []
    for has_init in (False, True):
        for bc, bdv, warps, stages, maxnreg in SYMMETRIC_CONFIGS:
            if has_init and (bc, bdv, warps, stages, maxnreg) != SYMMETRIC_CONFIGS[1]:
                continue  # the starting-state load is outside the loop: one check is enough
            sig = {n: "*bf16" for n in ("Q", "K", "V", "Y")}
            sig |= {n: "*fp32" for n in ("S_INIT", "ZK_INIT", "Z1_INIT")}
            sig |= {"N": "i32", "M": "i32", "scale": "fp32"}
            consts = {"DV": 64, "BLOCK_C": bc, "BLOCK_DV": bdv, "HAS_INIT": has_init}
            sig |= {n: "constexpr" for n in consts}
            label = f"symmetric{' +init' if has_init else ''} {(bc, bdv, warps, stages, maxnreg)}"
            specs.append(
                (
                    label,
                    symmetric_causal_fwd,
                    dict(
                        sig=sig,
                        consts=consts,
                        div=list(range(9)),
                        warps=warps,
                        stages=stages,
                        maxnreg=maxnreg,
                    ),
                )
            )
    for bc, _, warps, stages, maxnreg in ENCODER_CONFIGS:
        sig = {n: "*bf16" for n in ("KE", "VE")}
        sig |= {n: "*fp32" for n in ("S_PART", "ZK_PART", "Z1_PART")}
        sig |= {"M": "i32", "SEGMENT": "i32", "scale": "fp32"}
        consts = {"DV": 64, "BLOCK_C": bc, "BLOCK_DV": 64}
        sig |= {n: "constexpr" for n in consts}
        specs.append(
            (
                f"symmetric encoder {(bc, 64, warps, stages, maxnreg)}",
                symmetric_encoder_state,
                dict(
                    sig=sig,
                    consts=consts,
                    div=list(range(7)),
                    warps=warps,
                    stages=stages,
                    maxnreg=maxnreg,
                ),
            )
        )
    for bc, bdv, warps, stages, maxnreg in FULL_CONFIGS:
        sig = {n: "*bf16" for n in ("Q", "K", "V", "Y", "KE", "VE")}
        sig |= {"N": "i32", "M": "i32", "scale": "fp32"}
        consts = {"DK": 16, "DV": 64, "BLOCK_C": bc, "BLOCK_DV": bdv, "HAS_ENCODER": False}
        sig |= {n: "constexpr" for n in consts}
        specs.append(
            (
                f"full {(bc, bdv, warps, stages, maxnreg)}",
                taylor_linear_attention_fwd,
                dict(
                    sig=sig,
                    consts=consts,
                    div=list(range(8)),
                    warps=warps,
                    stages=stages,
                    maxnreg=maxnreg,
                ),
            )
        )
    return specs


def compile_report(
    fn: Any, *, sig: dict, consts: dict, div: list[int], warps: int, stages: int, maxnreg: int
) -> dict[str, Any]:
    """Registers, spill bytes, shared memory and programs per SM of one compiled config."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    src = ASTSource(fn, sig, constexprs=consts, attrs=_divisible(div))
    options = {"num_warps": warps, "num_stages": stages}
    if maxnreg:
        options["maxnreg"] = maxnreg
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    with tempfile.TemporaryDirectory() as tmp:
        ptx = os.path.join(tmp, "k.ptx")
        with open(ptx, "w") as f:
            f.write(compiled.asm["ptx"])
        log = subprocess.run(
            [ptxas, "--gpu-name=sm_90a", "-v", ptx, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
    regs = int(re.search(r"Used (\d+) registers", log).group(1))
    spill_st = int(re.search(r"(\d+) bytes spill stores", log).group(1))
    spill_ld = int(re.search(r"(\d+) bytes spill loads", log).group(1))
    smem = int(compiled.metadata.shared)
    threads = 32 * warps
    by_regs = REGISTERS_PER_SM // (((regs + 7) // 8 * 8) * threads)  # allocation granule 8
    by_smem = SMEM_PER_SM // max(smem, 1)
    programs = min(by_regs, MAX_THREADS_PER_SM // threads, by_smem)
    return {
        "regs": regs,
        "spill_stores": spill_st,
        "spill_loads": spill_ld,
        "smem": smem,
        "programs_per_sm": programs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="substring of the labels to compile")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise SystemExit("unset TRITON_INTERPRET: this compiles for the GPU")
    print(
        "| kernel (block_c, block_dv, warps, stages, maxnreg) | regs | spill st/ld B | smem B | "
        "programs/SM |\n|---|---|---|---|---|",
        flush=True,
    )
    for label, fn, kw in _specs():
        if args.only not in label:
            continue
        r = compile_report(fn, **kw)
        print(
            f"| {label} | {r['regs']} | {r['spill_stores']}/{r['spill_loads']} | {r['smem']} | "
            f"{r['programs_per_sm']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
