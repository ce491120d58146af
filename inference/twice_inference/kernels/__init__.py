"""Fused prefill kernels for Taylor-feature linear attention: causal Based and prefix (JRT-RNN).

`reference` holds the slow float64-capable PyTorch definitions; `based_triton` and `prefix_triton`
the Triton kernels; `bench` the GPU benchmark. `tests/test_kernels.py` runs the kernels under the
Triton interpreter on CPU against the references.
"""
