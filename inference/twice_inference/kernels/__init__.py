"""Fused prefill kernels for Taylor-feature linear attention: causal Based and prefix (JRT-RNN).

`reference` holds the slow float64-capable PyTorch definitions; `based_triton` (public Based
entry, validation, the 273-feature default kernel), `symmetric_triton` (153-feature kernels) and
`prefix_triton` the Triton paths; `bench` the GPU benchmark; `offline_compile` a register/spill
report. `tests/test_kernels.py` runs the kernels under the Triton interpreter against the
references.
"""
