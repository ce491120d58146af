"""Model-agnostic inference: batched greedy decoding, prompt NLL, device and worker description.
Talks to models only through ``protocols.LanguageModel``; tested in ``tests/test_generate.py``."""

from twice_inference.engine.generate import (
    Generation,
    GenerationResult,
    GenerationTiming,
    greedy_generate,
    prompt_nll,
)

__all__ = ["Generation", "GenerationResult", "GenerationTiming", "greedy_generate", "prompt_nll"]
