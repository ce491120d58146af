"""Fused prefill kernels: Taylor-feature linear attention (causal Based and prefix, JRT-RNN) and
Mamba-1's selective scan. The bottom layer: they import nothing of the package but each other.
`based_triton` (public Based entry, validation, the 273-feature default kernel),
`symmetric_triton` (153-feature kernels), `prefix_triton` and `taylor_state` (segment states and
the cost model of the sequence-parallel prefill) the Triton Taylor paths; `decay_triton` the
decayed Taylor kernel of based-360m-30b (per-head decay, output scale); `taylor_decode_state`
the decode state a prompt leaves (segment states added up); `taylor_cuda` (with
`taylor_cuda.cu`) the CUDA C++ Taylor prefill for Hopper, built with nvcc on first use;
`taylor_prefill` the per-shape choice between the two that the ops call; `selective_scan_triton`
the scan; `offline_compile` a register/spill report. The ops (``twice_inference.ops``) dispatch
to them; `tests/test_kernels.py` and `tests/test_scan_kernels.py` run the Triton kernels under
the interpreter against the ops' float64 references; ``bench.kernels`` (which also checks the
CUDA kernel) and ``bench.scans`` time them on a GPU.
"""
