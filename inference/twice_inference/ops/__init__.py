"""Attention ops, below the models and above the Triton kernels: one package per op, each with
its float64 ``naive`` reference (what every test compares with), its chunked PyTorch form
(``chunk``) and, in the package itself, the dispatch that picks the Triton kernel where it
computes the same thing. ``feature_map`` is the Taylor map they share; ``kernel_mode`` decides
when a kernel may run. Nothing here imports a model.
"""
