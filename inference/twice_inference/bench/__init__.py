"""GPU benchmarks run by hand (``python -m twice_inference.bench.<name>``), above the layers they
time: ``kernels`` (the Triton kernels beside SDPA flash attention and flash-linear-attention),
``models`` (per-family agreement and prefill throughput; ``model_check``, ``model_throughput``,
``model_common``) and ``end_to_end`` (the Table 1 grid in GPU-hours, our engine vs ``generate``).
Their figures go to docs/measurements/ and kernels/NOTES.md.
"""
