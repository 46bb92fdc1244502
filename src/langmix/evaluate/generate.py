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
  are given;
- no row runs past the model's context (`context_length`): a row's cap is cut to the room its prompt leaves, and a
  prompt that fills the context gets no answer (`fit_context`; the rows cut are named in a warning).
`plain_generate` is the reference: batched `model.generate` exactly as a ten-line script would call it.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Callable, Sequence

import torch

from langmix.records import Example
from langmix.timing import compute
from langmix.tokenization import chat_prompts_cached, decode_all, encode_cached

log = logging.getLogger(__name__)

SHARED_PREFIX_MIN = 32  # the length from which a shared prefix is worth its extra forward, when sharing is asked for


def render_prompts(tokenizer, examples: list[Example]) -> list[str]:
    """The model's chat template applied to each example's prompt turns, with the generation prompt."""
    return chat_prompts_cached(tokenizer, [ex.prompt_messages() for ex in examples])


# where transformers' configs hold the most positions a model takes, newest name first
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "max_seq_len")


def context_length(model) -> int | None:
    """The most positions `model` takes, prompt and generated tokens together: its own `context_length` (a vLLM
    engine's `max_model_len`) or its config's (text) `max_position_embeddings` or an older name for it; None where
    it states none."""
    own = getattr(model, "context_length", None)
    if isinstance(own, int):
        return own
    config = getattr(model, "config", None)
    if config is None:
        return None
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for field in _CONTEXT_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def fit_context(rows: Sequence[Sequence[int]], caps: Sequence[int], n_ctx: int | None) -> tuple[list[int], list[int]]:
    """(each row's cap cut to the room its prompt leaves in `n_ctx` positions, 0 where the prompt fills them; the
    indices of the rows whose prompt and cap did not fit). Caps that fit are unchanged, so are their outputs."""
    if n_ctx is None:
        return list(caps), []
    fitted = [min(cap, max(0, n_ctx - len(row))) for row, cap in zip(rows, caps)]
    return fitted, [i for i, (cap, fit) in enumerate(zip(caps, fitted)) if fit < cap]


def warn_over_context(examples: list[Example], rows: Sequence[Sequence[int]], caps: Sequence[int],
                      over: list[int], n_ctx: int) -> None:
    """One warning naming the items (of `over`) whose prompt and answer cap exceed the model's context."""
    ids = [examples[i].id for i in over]
    filled = sum(1 for i in over if len(rows[i]) >= n_ctx)
    log.warning("%d of %d %s items do not fit the model's context of %d positions with their answer (prompt + up to "
                "%d new tokens; the longest prompt is %d tokens): %s%s; their answers end where the context does%s",
                len(over), len(examples), examples[over[0]].task, n_ctx, max(caps[i] for i in over),
                max(len(rows[i]) for i in over), ", ".join(ids[:5]), " ..." if len(ids) > 5 else "",
                f" ({filled} get none: the prompt fills it)" if filled else "")


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


@functools.cache
def _growing_layer_class():
    """A DynamicLayer that writes into preallocated buffers instead of concatenating at every step (which copies
    the whole cache each token), and that can take in the rows of another layer (`join`)."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        capacity = 0

        def _hold(self, keys: torch.Tensor, values: torch.Tensor, used: int) -> None:
            self._kv = (keys, values)
            self.keys, self.values = keys[..., :used, :], values[..., :used, :]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self.keys.shape[-2] if self.keys.numel() else 0
            k = key_states.shape[-2]
            buf = getattr(self, "_kv", None)
            if buf is None or n + k > buf[0].shape[-2]:
                cap = max(self.capacity, 2 * (n + k))
                new = (key_states.new_empty((*key_states.shape[:-2], cap, key_states.shape[-1])),
                       value_states.new_empty((*value_states.shape[:-2], cap, value_states.shape[-1])))
                if n:
                    new[0][..., :n, :].copy_(self.keys)
                    new[1][..., :n, :].copy_(self.values)
                buf = new
            buf[0][..., n:n + k, :].copy_(key_states)
            buf[1][..., n:n + k, :].copy_(value_states)
            self._hold(buf[0], buf[1], n + k)
            return self.keys, self.values

        def batch_select_indices(self, indices):
            if getattr(self, "_kv", None) is not None:
                self._hold(self._kv[0][indices], self._kv[1][indices], self.keys.shape[-2])

        def batch_repeat_interleave(self, repeats):
            if getattr(self, "_kv", None) is not None:
                self._hold(self._kv[0].repeat_interleave(repeats, 0), self._kv[1].repeat_interleave(repeats, 0),
                           self.keys.shape[-2])

        def join(self, other: "GrowingLayer", starts: tuple[int, int], width: int, capacity: int) -> None:
            """Take in `other`'s rows below this layer's: position j of the joined cache holds position
            j - starts[k] of part k (zeros, masked out, where that is before the part's first position)."""
            parts = (self.keys, self.values), (other.keys, other.values)
            rows = [p[0].shape[0] for p in parts]
            out = [t.new_zeros((sum(rows), *t.shape[1:-2], max(capacity, width), t.shape[-1])) for t in parts[0]]
            top = 0
            for (keys, values), start, n in zip(parts, starts, rows):
                cut = max(0, -start)  # leading positions masked in every row of the joined batch: dropped
                used = keys.shape[-2] - cut
                out[0][top:top + n, ..., start + cut:start + cut + used, :].copy_(keys[..., cut:, :])
                out[1][top:top + n, ..., start + cut:start + cut + used, :].copy_(values[..., cut:, :])
                top += n
            self._hold(out[0], out[1], width)

    return GrowingLayer


def _growing_cache(model, capacity: int, longest: int):
    """A DynamicCache whose full-attention layers are `GrowingLayer`s with room for `capacity` positions. A
    sliding-window layer becomes one too where no row can be `longest` positions or longer (its window then never
    bites, so it attends like a full layer); otherwise it keeps its own kind, and the batch cannot take in rows."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    growing = _growing_layer_class()
    cache = DynamicCache(config=model.config)
    for layer in getattr(cache, "layers", []):
        if type(layer) is DynamicLayer or (type(layer) is DynamicSlidingWindowLayer
                                           and longest < layer.sliding_window):
            layer.__class__ = growing
            layer.capacity = capacity
    return cache


def _all_growing(cache) -> bool:
    growing = _growing_layer_class()
    return all(type(layer) is growing for layer in cache.layers)


def _room(new_tokens: int) -> int:
    """Positions reserved up front for new tokens (more are added by doubling as rows reach them): a cap of
    thousands of tokens that answers rarely reach would otherwise hold that much KV memory for every row."""
    return min(new_tokens, 256) + 1


def _stopped(tokenizer, row: list[int], stop: Sequence[str], tail_tokens: int = 16) -> bool:
    text = tokenizer.decode(row[-tail_tokens:], skip_special_tokens=False)
    return any(s in text for s in stop)


class _Batch:
    """The rows decoded together: their KV cache, attention mask (one column per cache position), last position,
    tokens each may still generate, example index, whether it has finished (finished rows are computed along
    until enough of them are worth a copy of the cache), and the logits of each row's next token."""

    def __init__(self, cache, mask: torch.Tensor, last_pos: torch.Tensor, left: torch.Tensor, rows: list[int],
                 logits: torch.Tensor):
        self.cache, self.mask, self.last_pos, self.left, self.rows, self.logits = (
            cache, mask, last_pos, left, rows, logits)
        self.finished = [False] * len(rows)

    def keep(self, keep: list[int], nxt: torch.Tensor) -> torch.Tensor:
        """Drop every row not in `keep` (their cache rows too); returns `nxt` of the rows kept."""
        keep_t = torch.tensor(keep, device=self.mask.device)
        for layer in self.cache.layers:
            layer.batch_select_indices(keep_t)
        self.mask, self.last_pos, self.left = self.mask[keep_t], self.last_pos[keep_t], self.left[keep_t]
        self.rows = [self.rows[b] for b in keep]
        self.finished = [False] * len(keep)
        return nxt[keep_t]

    def join(self, other: "_Batch") -> None:
        """Take in `other`'s rows (continuous batching): both masks are left-padded to one width, and positions
        masked in every row are dropped from the front."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        masks = [torch.nn.functional.pad(m, (width - m.shape[1], 0)) for m in (self.mask, other.mask)]
        mask = torch.cat(masks)
        lead = int(mask.any(0).int().argmax())
        starts = tuple(width - m.shape[1] - lead for m in (self.mask, other.mask))
        capacity = width - lead + _room(int(torch.cat([self.left, other.left]).max()))
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.join(theirs, starts, width - lead, capacity)
        self.mask = mask[:, lead:]
        self.last_pos = torch.cat([self.last_pos, other.last_pos])
        self.left = torch.cat([self.left, other.left])
        self.rows = self.rows + other.rows
        self.finished = self.finished + other.finished
        self.logits = torch.cat([self.logits, other.logits])


class _Prefill:
    """Encodes the prompts of rows joining the decoding (left-padded among themselves), optionally with a prompt
    prefix they all share encoded once."""

    def __init__(self, model, pad_id: int, device, cache_arg: str, shared_prefix_min: int, longest: int):
        self.model, self.pad_id, self.device, self.cache_arg = model, pad_id, device, cache_arg
        self.shared_prefix_min, self.longest = shared_prefix_min, longest  # longest: prompt + new tokens, any row

    def __call__(self, rows: list[Sequence[int]], caps: list[int], index: list[int]) -> _Batch:
        n, model, cache_kw = len(rows), self.model, {}
        cache = _growing_cache(model, max(len(r) for r in rows) + _room(max(caps)), self.longest)
        cache_kw[self.cache_arg] = cache
        prefix = _common_prefix(rows) if n > 1 and self.shared_prefix_min else 0
        prefix = min(prefix, min(len(r) for r in rows) - 1)  # every row keeps at least one token of its own
        if prefix < (self.shared_prefix_min or 1) or not _all_growing(cache):
            # a kept sliding-window layer measures its window in cache positions, and the padding between the
            # shared prefix and a shorter row's own tokens would take up some of it (outputs changed)
            prefix = 0
        width = max(len(r) for r in rows) - prefix
        if prefix:
            ids = torch.tensor([rows[0][:prefix]], device=self.device)
            model(input_ids=ids, attention_mask=torch.ones_like(ids), **cache_kw, use_cache=True, logits_to_keep=1)
            for layer in cache.layers:
                layer.batch_repeat_interleave(n)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((n, width), dtype=torch.long)
        for i, row in enumerate(rows):
            suffix = row[prefix:]
            ids[i, width - len(suffix):] = torch.tensor(suffix)
            suffix_mask[i, width - len(suffix):] = 1
        mask = torch.cat([torch.ones((n, prefix), dtype=torch.long), suffix_mask], 1).to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix:]
        logits = model(input_ids=ids.to(self.device), attention_mask=mask, position_ids=positions, **cache_kw,
                       use_cache=True, logits_to_keep=1).logits
        return _Batch(cache, mask, positions[:, -1], torch.tensor(caps, device=self.device), list(index), logits)


@torch.inference_mode()
def generate(model, tokenizer, examples: list[Example], max_new_tokens: int | Sequence[int], batch_size: int,
             progress: Callable[[int], None] | None = None, stop: Sequence[str] | None = None,
             shared_prefix_min: int = 0, join_rows: bool = False) -> list[str]:
    """Greedy completions, in input order.

    `max_new_tokens` is one cap or one per example (e.g. per task); `stop` strings end a row like the end-of-turn
    token does (the text up to and including the token that completes the stop string is kept, as with
    `model.generate(stop_strings=...)`). `shared_prefix_min=N` encodes a prompt prefix of N or more tokens shared
    by the rows joining together once; it is off by default because it did not win: 0.99x on an H100 (Qwen3-1.7B
    shape, best of 3 alternating passes; an earlier single pass gave 0.68x), 0.81x and 1.00x in two runs of the
    2-core CPU eval benchmark (best of 3 rounds each; the extra prefix forward and the copy of its cache into every
    row cost as much as the prompt tokens saved, or more).
    `join_rows=True` is continuous batching: as rows finish, the next prompts are encoded and join the running
    batch (their cache left-padded to its width), instead of each batch running until its last row ends. It is off
    by default because on the 2-core CPU benchmark model it did not win (attention there is bound by reading the
    KV cache, and joined rows read the batch's full width): 1.05x with 132 prompts per task, 0.93x-1.00x with 528
    (medians of 8 alternating runs, identical outputs). On an H100 a decoding step costs about the same with 1 row
    as with 64 (67 vs 75 ms: bound by launching kernels), and it measured 1.14x in a single pass each (static
    batches first, so a first-pass slowdown may be in it); `benchmarks/gpu_train_eval.py` now alternates them.
    `progress(k)` is called as k more examples finish.
    No row runs past the model's context (`fit_context`): its cap is cut to the room its prompt leaves, with a
    warning naming it; a prompt that fills the context gets no answer ("").
    """
    if not examples:
        return []
    prompts = render_prompts(tokenizer, examples)
    rows = encode_cached(tokenizer, prompts)  # a study evaluates every run of a model on the same prompts
    caps = [max_new_tokens] * len(rows) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    n_ctx = context_length(model)
    asked = caps
    caps, over = fit_context(rows, asked, n_ctx)
    if over:  # (evaluate.run fits the caps first, and counts the items)
        warn_over_context(examples, rows, asked, over, n_ctx)
    out: list[list[int]] = [[] for _ in rows]
    live = [i for i in range(len(rows)) if caps[i] > 0]  # a prompt that fills the context gets no answer
    if progress and len(live) < len(rows):
        progress(len(rows) - len(live))
    if not live:
        return decode_all(tokenizer, out)
    pending = sorted(live, key=lambda i: (len(rows[i]), i))[::-1]  # shortest last: pop() takes it
    device = next(model.parameters()).device
    eos_t = torch.tensor(_eos_ids(model, tokenizer), device=device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(eos_t[0])
    longest = max(len(rows[i]) for i in live) + max(caps[i] for i in live)
    prefill = _Prefill(model, pad_id, device, _cache_kwarg(model), shared_prefix_min, longest)
    few = max(1, batch_size // 8)  # free places worth a join (a copy of the cache)

    def admit(k: int) -> _Batch:
        idx = [pending.pop() for _ in range(min(k, len(pending)))]
        return prefill([rows[i] for i in idx], [caps[i] for i in idx], idx)

    def step(batch: _Batch | None) -> tuple[_Batch | None, int]:
        """One token for every row of the batch (admitting the first rows if there is none): (the batch, or None
        once all its rows finished; how many rows finished at this step)."""
        if batch is None:
            batch = admit(batch_size)
        nxt = batch.logits[:, -1].argmax(-1)
        batch.left = batch.left - 1
        done = (torch.isin(nxt, eos_t) | (batch.left <= 0)).tolist()
        newly = 0
        for b, (row, token) in enumerate(zip(batch.rows, nxt.tolist())):
            if not batch.finished[b]:
                out[row].append(token)
                if done[b] or (stop and _stopped(tokenizer, out[row], stop)):
                    batch.finished[b], newly = True, newly + 1
        live = [b for b, finished in enumerate(batch.finished) if not finished]
        if not live:
            return None, newly
        # Finished rows leave once they are worth a copy of the cache; with rows joining, at once: a finished row
        # kept along while later rows run on would pass positions its model may not have (learned positions)
        if len(batch.rows) - len(live) >= (1 if join_rows else max(1, len(batch.rows) // 8)):
            nxt = batch.keep(live, nxt)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((batch.mask.shape[0], 1))], 1)
        batch.last_pos = batch.last_pos + 1
        batch.logits = model(input_ids=nxt[:, None], attention_mask=batch.mask, position_ids=batch.last_pos[:, None],
                             **{prefill.cache_arg: batch.cache}, use_cache=True).logits
        free = batch_size - len(batch.rows)
        if join_rows and pending and free >= few and _all_growing(batch.cache):
            batch.join(admit(free))
        return batch, newly

    was_training = model.training
    model.eval()
    try:
        batch: _Batch | None = None
        while batch is not None or pending:
            with compute("generate"):  # the progress callback (a progress bar, a heartbeat) is not compute
                batch, newly = step(batch)
            if progress and newly:
                progress(newly)
    finally:
        model.train(was_training)
    return decode_all(tokenizer, out)  # the end-of-turn token stays in `out`, as in `model.generate`


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
