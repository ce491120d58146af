"""Tiny model configs the model and benchmark tests share: small enough for a CPU test, with every
layer kind of the Based hybrid (short conv, Taylor linear attention, sliding window) present."""

VOCAB = 61

HYBRID = dict(
    vocab_size=VOCAB,
    d_model=32,
    n_layers=4,
    linear_attn_layers=[1],
    sliding_window_layers=[2],
    mlp_hidden=48,
    la_heads=2,
    feature_dim=4,
    swa_heads=4,
    window=3,
    conv_kernel=3,
)

# A hybrid the Triton kernels fit: feature dim 16, value head dim 64 / 2 = 32 (one 32-wide value
# block).
KERNEL_HYBRID = {**HYBRID, "d_model": 64, "la_heads": 2, "feature_dim": 16, "swa_heads": 4}
