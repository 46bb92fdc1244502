"""Batched greedy generation from chat prompts.

`generate` is langmix's own greedy decoding loop around the model's forward and KV cache; its outputs are those of
batched `model.generate(do_sample=False)` with left padding. What it does beyond that:
- prompts are rendered and tokenised once, in one call, and batches are formed by token length (little padding);
- a prompt prefix shared by the whole batch (system prompt, tool schemas, few-shot exemplars) is encoded once and
  its KV cache shared by every row (`shared_prefix_min` tokens or longer; off by default: measured slower);
- rows that finish (end-of-turn token, a stop string, or their own max-token cap) leave the batch at once: their
  KV cache rows are dropped, so later steps compute only the rows still generating, and a batch ends when its last
  row does;
- per step, only the last position's logits are computed, and no per-row host work happens unless stop strings
  are given.
`plain_generate` is the reference: batched `model.generate` exactly as a ten-line script would call it.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch

from langmix.records import Example
from langmix.timing import compute
from langmix.tokenization import chat_prompts_cached, decode_all, encode_cached

SHARED_PREFIX_MIN = 32  # the length from which a shared prefix is worth its extra forward, when sharing is asked for


def render_prompts(tokenizer, examples: list[Example]) -> list[str]:
    """The model's chat template applied to each example's prompt turns, with the generation prompt."""
    return chat_prompts_cached(tokenizer, [ex.prompt_messages() for ex in examples])


def _eos_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    cfg_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if cfg_eos is not None and tokenizer.eos_token_id is None:
        ids.update(cfg_eos if isinstance(cfg_eos, list) else [cfg_eos])
    return sorted(i for i in ids if i is not None)


def _cache_kwarg(model) -> str:
    """The forward's name for the KV cache argument (`cache` in newer transformers, `past_key_values` before)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def _growing_cache(model, capacity: int):
    """A DynamicCache whose full-attention layers write into preallocated buffers of `capacity` positions instead
    of concatenating at every step (which copies the whole cache each token)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self.keys.shape[-2] if self.keys.numel() else 0
            k = key_states.shape[-2]
            buf = getattr(self, "_kv", None)
            if buf is None or n + k > buf[0].shape[-2]:
                cap = max(capacity, 2 * (n + k))
                shape = (*key_states.shape[:-2], cap, key_states.shape[-1])
                buf = (key_states.new_empty(shape), value_states.new_empty(
                    (*value_states.shape[:-2], cap, value_states.shape[-1])))
                if n:
                    buf[0][..., :n, :].copy_(self.keys)
                    buf[1][..., :n, :].copy_(self.values)
                self._kv = buf
            buf[0][..., n:n + k, :].copy_(key_states)
            buf[1][..., n:n + k, :].copy_(value_states)
            self.keys, self.values = buf[0][..., :n + k, :], buf[1][..., :n + k, :]
            return self.keys, self.values

        def batch_select_indices(self, indices):
            if getattr(self, "_kv", None) is not None:
                n = self.keys.shape[-2]
                self._kv = (self._kv[0][indices], self._kv[1][indices])
                self.keys, self.values = self._kv[0][..., :n, :], self._kv[1][..., :n, :]

        def batch_repeat_interleave(self, repeats):
            if getattr(self, "_kv", None) is not None:
                n = self.keys.shape[-2]
                self._kv = (self._kv[0].repeat_interleave(repeats, 0), self._kv[1].repeat_interleave(repeats, 0))
                self.keys, self.values = self._kv[0][..., :n, :], self._kv[1][..., :n, :]

    cache = DynamicCache(config=model.config)
    for layer in getattr(cache, "layers", []):
        if type(layer) is DynamicLayer:
            layer.__class__ = GrowingLayer
    return cache


def _select_rows(cache, keep: torch.Tensor) -> None:
    for layer in cache.layers:
        layer.batch_select_indices(keep)


def _expand_rows(cache, rows: int) -> None:
    for layer in cache.layers:
        layer.batch_repeat_interleave(rows)


def _stopped(tokenizer, row: list[int], stop: Sequence[str], tail_tokens: int = 16) -> bool:
    text = tokenizer.decode(row[-tail_tokens:], skip_special_tokens=False)
    return any(s in text for s in stop)


def _generate_batch(model, rows: list[list[int]], caps: list[int], eos: list[int], pad_id: int, device,
                    cache_arg: str, tokenizer, stop: Sequence[str] | None, shared_prefix_min: int) -> list[list[int]]:
    """Greedy continuation of each token row (at most caps[i] new tokens); rows leave the batch when done."""
    n = len(rows)
    prefix = _common_prefix(rows) if n > 1 and shared_prefix_min else 0
    if prefix < shared_prefix_min:
        prefix = 0
    prefix = min(prefix, min(len(r) for r in rows) - 1)  # every row keeps at least one token of its own
    if prefix < (shared_prefix_min or 1):
        prefix = 0
    width = max(len(r) for r in rows) - prefix
    cache = _growing_cache(model, prefix + width + max(caps) + 1)
    if prefix:
        ids = torch.tensor([rows[0][:prefix]], device=device)
        model(input_ids=ids, attention_mask=torch.ones_like(ids), **{cache_arg: cache}, use_cache=True,
              logits_to_keep=1)
        _expand_rows(cache, n)
    suffixes = [r[prefix:] for r in rows]
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    suffix_mask = torch.zeros((n, width), dtype=torch.long)
    for i, s in enumerate(suffixes):
        ids[i, width - len(s):] = torch.tensor(s)
        suffix_mask[i, width - len(s):] = 1
    mask = torch.cat([torch.ones((n, prefix), dtype=torch.long), suffix_mask], 1).to(device)
    ids = ids.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix:]
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, **{cache_arg: cache},
                   use_cache=True, logits_to_keep=1).logits
    eos_t = torch.tensor(eos, device=device)
    out: list[list[int]] = [[] for _ in range(n)]
    rows_in_batch = list(range(n))  # the example row of each batch row
    live = [True] * n  # False: finished, still in the batch until the next compaction
    caps_t = torch.tensor(caps, device=device)
    row_caps = caps_t
    last_pos = positions[:, -1]
    step = 0
    while True:
        nxt = logits[:, -1].argmax(-1)
        step += 1
        done = (torch.isin(nxt, eos_t) | (row_caps <= step)).tolist()
        for b, (row, tok) in enumerate(zip(rows_in_batch, nxt.tolist())):
            if live[b]:
                out[row].append(tok)
                if done[b] or (stop and _stopped(tokenizer, out[row], stop)):
                    live[b] = False
        n_live = sum(live)
        if n_live == 0:
            break
        # Finished rows leave the batch once they are worth a copy of the cache (an eighth of the batch)
        if len(live) - n_live >= max(1, len(live) // 8):
            keep = [b for b, alive in enumerate(live) if alive]
            keep_t = torch.tensor(keep, device=device)
            _select_rows(cache, keep_t)
            nxt, mask, last_pos, row_caps = nxt[keep_t], mask[keep_t], last_pos[keep_t], row_caps[keep_t]
            rows_in_batch = [rows_in_batch[b] for b in keep]
            live = [True] * len(keep)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], 1)
        last_pos = last_pos + 1
        logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos[:, None],
                       **{cache_arg: cache}, use_cache=True).logits
    return out  # the end-of-turn token stays, as in `model.generate`; decoding skips it when it is special


@torch.inference_mode()
def generate(model, tokenizer, examples: list[Example], max_new_tokens: int | Sequence[int], batch_size: int,
             progress: Callable[[int], None] | None = None, stop: Sequence[str] | None = None,
             shared_prefix_min: int = 0) -> list[str]:
    """Greedy completions, in input order.

    `max_new_tokens` is one cap or one per example (e.g. per task); `stop` strings end a row like the end-of-turn
    token does (the text up to and including the token that completes the stop string is kept, as with
    `model.generate(stop_strings=...)`). `shared_prefix_min=N` encodes a prompt prefix of N or more tokens shared
    by a whole batch once; it is off by default because it measured slower: 0.68x on an H100 (Qwen3-1.7B shape),
    0.81x and 1.00x in two runs of the 2-core CPU eval benchmark (best of 3 rounds each; the extra prefix forward
    and the copy of its cache into every row cost as much as the prompt tokens saved, or more).
    """
    if not examples:
        return []
    prompts = render_prompts(tokenizer, examples)
    rows = encode_cached(tokenizer, prompts)  # a study evaluates every run of a model on the same prompts
    caps = [max_new_tokens] * len(rows) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i]), i))
    outputs: list[str] = [""] * len(rows)
    device = next(model.parameters()).device
    eos = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    cache_arg = _cache_kwarg(model)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            with compute("generate"):
                new = _generate_batch(model, [rows[i] for i in idx], [caps[i] for i in idx], eos, pad_id, device,
                                      cache_arg, tokenizer, stop, shared_prefix_min)
            for i, text in zip(idx, decode_all(tokenizer, new)):
                outputs[i] = text
            if progress:
                progress(len(idx))
    finally:
        model.train(was_training)
    return outputs


@torch.inference_mode()
def plain_generate(model, tokenizer, examples: list[Example], max_new_tokens: int, batch_size: int) -> list[str]:
    """The reference: batched `model.generate` with left padding, prompts sorted by character length."""
    prompts = render_prompts(tokenizer, examples)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True)):
            outputs[i] = text
    return outputs
