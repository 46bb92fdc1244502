"""Batched greedy generation from chat prompts."""

from __future__ import annotations

from typing import Callable

import torch

from langmix.records import Example
from langmix.timing import compute


def render_prompts(tokenizer, examples: list[Example]) -> list[str]:
    """The model's chat template applied to each example's prompt turns, with the generation prompt."""
    return [tokenizer.apply_chat_template(ex.prompt_messages(), tokenize=False, add_generation_prompt=True)
            for ex in examples]


@torch.inference_mode()
def generate(model, tokenizer, examples: list[Example], max_new_tokens: int, batch_size: int,
             progress: Callable[[int], None] | None = None) -> list[str]:
    """Greedy completions, in input order. Prompts are sorted by length so batches pad little."""
    prompts = render_prompts(tokenizer, examples)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(device) for k, v in batch.items()}
        with compute("generate"):
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True)):
            outputs[i] = text
        if progress:
            progress(len(idx))
    return outputs
