"""Sequence ops, below the models and above the Triton kernels: one package per op (Taylor
linear attention, prefix linear attention, Mamba-1's selective scan, Mamba-2's SSD, GLA), each
with its float64 ``naive`` reference (what every test compares with), its chunked PyTorch form
(``chunk``, with the one-token step where the op has one) and, in the package itself, the
dispatch that picks a kernel where it computes the same thing. ``pointwise`` fuses the
elementwise work around the matmuls (rotary, SwiGLU). ``feature_map`` is the Taylor map
the attention ops share; ``kernel_mode`` decides when a kernel may run. Nothing here imports a
model.
"""
