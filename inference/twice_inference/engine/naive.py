"""The slow, obvious references for ``engine/generate.py``: one prompt at a time, no padding, no
recurrent state; every new token is the argmax of a full ``forward`` over the sequence so far.
``tests/test_generate.py`` checks the fast path against these token for token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from twice_inference.engine.generate import model_device
from twice_inference.protocols import LanguageModel


def naive_greedy_generate(
    model: LanguageModel,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_id: int | None,
) -> list[list[int]]:
    """Generated ids per prompt, without the stop token."""
    device = model_device(model)
    outputs: list[list[int]] = []
    with torch.inference_mode():
        for prompt in prompts:
            sequence = list(prompt)
            generated: list[int] = []
            for _ in range(max_new_tokens):
                ids = torch.tensor([sequence], dtype=torch.long, device=device)
                token = int(model.forward(ids, torch.ones_like(ids))[0, -1].argmax())
                if token == stop_id:
                    break
                generated.append(token)
                sequence.append(token)
            outputs.append(generated)
    return outputs


def naive_prompt_nll(model: LanguageModel, prompts: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """NLL of tokens 1..L-1 of each prompt, one unpadded prompt at a time, summed token by token
    from the softmax (no log_softmax fusion), float64 on CPU."""
    device = model_device(model)
    outputs: list[torch.Tensor] = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
            logits = model.forward(ids, torch.ones_like(ids))[0].double().cpu()
            values = [
                -float(torch.log(torch.softmax(logits[t - 1], dim=-1)[prompt[t]]))
                for t in range(1, len(prompt))
            ]
            outputs.append(torch.tensor(values, dtype=torch.float64))
    return outputs
