"""The fast SFT path: a mixture tokenised once (cached by content), padding-free batches of several examples in
one row, attention that keeps each example to itself (CPU: one SDPA call per example; GPU: flash varlen, else a
block-diagonal mask), and the loss as chunked cross-entropy over assistant tokens only, so full-vocabulary logits
are never materialised. `train.PackedSFTTrainer` runs it inside TRL's trainer.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import torch

from langmix import durable
from langmix.records import Example
from langmix.tokenization import tokenizer_fingerprint

log = logging.getLogger(__name__)


@dataclass
class TokenizedMixture:
    """Token ids and assistant masks of a mixture, truncated to `max_length`, in the mixture's order."""

    input_ids: list[list[int]]
    masks: list[list[int]]

    def labels(self) -> list[list[int]]:
        return [[t if m else -100 for t, m in zip(ids, mask)] for ids, mask in zip(self.input_ids, self.masks)]


def _tokenize(tokenizer, examples: list[Example], max_length: int, batch: int = 512) -> TokenizedMixture:
    ids_out, masks_out = [], []
    for start in range(0, len(examples), batch):
        chunk = [ex.messages for ex in examples[start:start + batch]]
        enc = tokenizer.apply_chat_template(chunk, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids_out += [list(row)[:max_length] for row in enc["input_ids"]]
        masks_out += [[1 if b else 0 for b in list(row)[:max_length]] for row in enc["assistant_masks"]]
    return TokenizedMixture(ids_out, masks_out)


def tokenize_mixture(tokenizer, examples: list[Example], max_length: int,
                     cache_dir: Path | None = None) -> TokenizedMixture:
    """Tokenise a mixture once: cached by (tokenizer fingerprint, examples' content, max_length)."""
    import numpy as np

    from langmix.cache import cache_root

    h = hashlib.sha256(tokenizer_fingerprint(tokenizer).encode())
    h.update(str(max_length).encode())
    for ex in examples:
        h.update(json.dumps(ex.messages, sort_keys=True, ensure_ascii=False).encode())
    path = Path(cache_dir or cache_root() / "tokenized") / f"{h.hexdigest()[:24]}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                ids, mask, offsets = z["ids"].tolist(), z["mask"].tolist(), z["offsets"].tolist()
            if len(offsets) == len(examples) + 1:
                spans = list(zip(offsets[:-1], offsets[1:]))
                return TokenizedMixture([ids[a:b] for a, b in spans], [mask[a:b] for a, b in spans])
        except (OSError, ValueError, KeyError):
            log.warning("tokenisation cache %s is unreadable; tokenising again", path)
    tok = _tokenize(tokenizer, examples, max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(r) for r in tok.input_ids], dtype=np.int64)
    flat_ids = np.fromiter((t for r in tok.input_ids for t in r), dtype=np.int64, count=int(offsets[-1]))
    flat_mask = np.fromiter((m for r in tok.masks for m in r), dtype=np.uint8, count=int(offsets[-1]))
    tmp = durable.temp_beside(path.with_suffix(""), ".tmp.npz")  # np.savez names it *.npz
    np.savez(tmp, ids=flat_ids.astype(np.int32 if flat_ids.max(initial=0) < 2**31 else np.int64),
             mask=flat_mask, offsets=offsets)
    tmp.replace(path)
    return tok


def prepared_row(ids, labels) -> dict:
    """One example as the collator concatenates it: int64 arrays of ids, labels (-100 where no loss, and on the
    first token, which nothing predicts), position ids and shifted labels (each position's next-token target
    within the example, -100 on its last token)."""
    import numpy as np

    labels = np.array(labels, dtype=np.int64)  # a copy: the caller's labels stay as they are
    if len(labels):
        labels[0] = -100
    shift = np.empty_like(labels)
    shift[:-1], shift[-1:] = labels[1:], -100
    return {"input_ids": np.asarray(ids, dtype=np.int64), "labels": labels,
            "position_ids": np.arange(len(labels), dtype=np.int64), "shift_labels": shift}


class TokenRows(torch.utils.data.Dataset):
    """A tokenised mixture as the trainer's dataset: each example's `prepared_row`, made once here, so the collator
    only concatenates (plain indexing: an Arrow dataset converts each step's rows to Python lists)."""

    def __init__(self, tok: TokenizedMixture) -> None:
        self.rows = [prepared_row(ids, labels) for ids, labels in zip(tok.input_ids, tok.labels())]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


class PaddingFreeCollator:
    """A step's examples as one row: ids concatenated, position ids restarting at 0 for each example.

    Besides `input_ids`, `position_ids` and `labels` (-100 where no loss), it returns what the attention and the
    loss need so that the hot loop does no host work: `cu_seq_lens_q/k` (int32 offsets, the flash-attention
    varlen convention, also read by `varlen_attention`), `max_length_q/k`, `seq_bounds` (the same offsets as Python
    ints), `shift_labels` (each position's next-token target within its own example), and `loss_positions` /
    `loss_targets` (the positions with a target and the targets). Features are `TokenRows` items; a feature
    with `input_ids` and `labels` only is made a `prepared_row` here.
    """

    def __call__(self, features: list[dict]) -> dict:
        import numpy as np

        if any("shift_labels" not in f for f in features):
            features = [prepared_row(f["input_ids"], f["labels"]) for f in features]
        lengths = [len(f["input_ids"]) for f in features]
        bounds = (0, *accumulate(lengths))
        ids, labels, positions, shift = (np.concatenate([f[key] for f in features])
                                         for key in ("input_ids", "labels", "position_ids", "shift_labels"))
        loss_positions = np.flatnonzero(shift != -100)
        cu = torch.tensor(bounds, dtype=torch.int32)
        return {
            "input_ids": torch.from_numpy(ids)[None], "position_ids": torch.from_numpy(positions)[None],
            "labels": torch.from_numpy(labels)[None], "shift_labels": torch.from_numpy(shift)[None],
            "loss_positions": torch.from_numpy(loss_positions), "loss_targets": torch.from_numpy(shift[loss_positions]),
            "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lengths), "max_length_k": max(lengths),
            "seq_bounds": bounds,
        }


_VARLEN_BROKEN: list[str] = []


def varlen_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                     sliding_window: int | None = None, **kwargs):
    """Attention over a padding-free row: each example attends causally to itself only.

    Registered as transformers attention implementation `langmix_varlen`. Without `seq_bounds` (a padded batch,
    generation) it is plain SDPA. On CUDA: PyTorch's flash varlen kernel where it exists, else one SDPA call with a
    block-diagonal causal mask. On CPU: one causal SDPA call per example, in float32 (PyTorch's CPU flash kernel
    is about twice as fast in float32 as in bf16 at these sizes, and one call per example does no work across
    examples: measured in benchmarks/train_throughput.py, 512 x 8 model, bf16 autocast elsewhere).
    query: (1, heads, tokens, dim); returns (1, tokens, heads, dim) like the built-ins.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.pop("seq_bounds", None)
    if bounds is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      sliding_window=sliding_window, **kwargs)
    dropout = dropout if module.training else 0.0
    gqa = query.shape[1] != key.shape[1]
    if query.is_cuda and not _VARLEN_BROKEN and dropout == 0.0:
        try:
            return _flash_varlen(query, key, value, scaling, sliding_window, kwargs), None
        except Exception as exc:  # an older torch or an unsupported shape
            _VARLEN_BROKEN.append(repr(exc))
            log.warning("flash varlen attention unavailable (%s); using one block-diagonal SDPA call", exc)
    if query.is_cuda:  # one kernel for the row beats one per example
        mask = _block_causal_mask(bounds, sliding_window, query.device)
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout,
                                                               scale=scaling, enable_gqa=gqa)
        return out.transpose(1, 2).contiguous(), None
    dtype = query.dtype
    with torch.autocast("cpu", enabled=False):
        lengths = [end - start for start, end in zip(bounds[:-1], bounds[1:])]
        # split (not slicing): its backward is one concatenation, not a zero-filled full-row gradient per example
        split = [x.float().split(lengths, dim=2) for x in (query, key, value)]
        outs = []
        for q, k, v, n in zip(*split, lengths):
            if sliding_window and n > sliding_window:
                i = torch.arange(n, device=q.device)
                allowed = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < sliding_window)
                o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout,
                                                                     scale=scaling, enable_gqa=gqa)
            else:
                o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout,
                                                                     scale=scaling, enable_gqa=gqa)
            outs.append(o)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
    return out.transpose(1, 2).to(dtype).contiguous(), None


def _flash_varlen(query, key, value, scaling, sliding_window, kwargs):
    from torch.nn.attention.varlen import varlen_attn

    cu = kwargs["cu_seq_lens_q"].to(query.device, torch.int32)
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # (tokens, heads, dim)
    if k.shape[1] != q.shape[1]:  # grouped-query attention: older kernels take equal head counts only
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    extra = {"window_size": (sliding_window - 1, 0)} if sliding_window else {}
    if "is_causal" in inspect.signature(varlen_attn).parameters:
        extra["is_causal"] = True
    elif not sliding_window:
        extra["window_size"] = (-1, 0)
    out = varlen_attn(q, k, v, cu, cu, int(kwargs["max_length_q"]), int(kwargs["max_length_k"]), scale=scaling,
                      **extra)
    return out.unsqueeze(0)


_MASKS: dict = {}


def _block_causal_mask(bounds: tuple[int, ...], sliding_window: int | None, device) -> torch.Tensor:
    """(1, 1, T, T) boolean mask: causal within each example, nothing across examples (cached for the step)."""
    key = (bounds, sliding_window, str(device))
    if key not in _MASKS:
        _MASKS.clear()
        lengths = torch.tensor([b - a for a, b in zip(bounds[:-1], bounds[1:])], device=device)
        seq = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
        i = torch.arange(bounds[-1], device=device)
        allowed = (seq[:, None] == seq[None, :]) & (i[:, None] >= i[None, :])
        if sliding_window:
            allowed &= i[:, None] - i[None, :] < sliding_window
        _MASKS[key] = allowed[None, None]
    return _MASKS[key]


def register_varlen() -> str:
    from transformers import AttentionInterface

    AttentionInterface.register("langmix_varlen", varlen_attention)
    return "langmix_varlen"


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum over rows of cross_entropy(hidden @ weight.T, targets), `chunk` rows of logits at a time.

    The gradients with respect to hidden and weight are formed in the forward pass (softmax - one-hot, per chunk),
    so the logits are computed once and never kept; backward only scales them.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, softcap: float | None):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        acc = torch.promote_types(hidden.dtype, torch.float32)  # logits and sums in at least fp32
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        total = torch.zeros((), dtype=acc, device=hidden.device)
        for s in range(0, hidden.shape[0], chunk):
            h, t = hidden[s:s + chunk], targets[s:s + chunk]
            raw = (h @ weight.T).to(acc)
            logits = softcap * torch.tanh(raw / softcap) if softcap else raw
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if need_h or need_w:
                g = torch.exp(logits - lse[:, None])
                g[torch.arange(len(t), device=g.device), t] -= 1.0
                if softcap:
                    g = g * (1 - (logits / softcap) ** 2)
                if need_h:
                    grad_h[s:s + chunk] = (g.to(weight.dtype) @ weight).to(hidden.dtype)
                if need_w:
                    grad_w.addmm_(g.T, h.to(acc))
        ctx.save_for_backward(*(x for x in (grad_h, grad_w) if x is not None))
        ctx.need = (need_h, need_w)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out):
        saved = list(ctx.saved_tensors)
        need_h, need_w = ctx.need
        gh = None
        if need_h:
            gh = saved.pop(0)
            gh = gh * grad_out.to(gh.dtype)
        gw = (saved.pop(0) * grad_out).to(ctx.weight_dtype) if need_w else None
        return gh, gw, None, None, None


def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = 1024,
                          softcap: float | None = None) -> torch.Tensor:
    """sum_i cross_entropy(hidden[i] @ weight.T, targets[i]) without materialising all the logits (exact)."""
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0 + weight.sum() * 0.0
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, softcap)


def backbone_and_head(model):
    """The decoder stack (returning final hidden states) and the output projection of a causal LM (PEFT or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = base.base_model if base.base_model is not base else None
    head = base.get_output_embeddings()
    if backbone is None or head is None or getattr(head, "bias", None) is not None:
        return None, None
    return backbone, head


def sequence_losses(model, batch: dict, chunk: int = 1024, softcap: float | None = None) -> torch.Tensor:
    """Summed assistant-token loss of a padding-free batch (from `PaddingFreeCollator`)."""
    backbone, head = backbone_and_head(model)
    hidden = backbone(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                      cu_seq_lens_q=batch["cu_seq_lens_q"], cu_seq_lens_k=batch["cu_seq_lens_k"],
                      max_length_q=batch["max_length_q"], max_length_k=batch["max_length_k"],
                      seq_bounds=batch["seq_bounds"]).last_hidden_state
    picked = hidden[0].index_select(0, batch["loss_positions"])
    return chunked_cross_entropy(picked, head.weight, batch["loss_targets"], chunk, softcap)


