"""GPU benchmarks run by hand (``python -m twice_inference.bench.<name>``), above the layers they
time: ``kernels`` (the Triton kernels beside SDPA flash attention and the PyTorch references).
Their figures go to docs/measurements/ and kernels/NOTES.md.
"""
