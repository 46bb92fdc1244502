"""Supervised fine-tuning with TRL's SFTTrainer: assistant-only loss, full or LoRA, checkpoints and resume.

With `training.packing` (the default) the SFT path is langmix's own around TRL's trainer loop:
- each mixture is tokenised once (chat template, assistant mask, truncation) and cached under
  `$LANGMIX_CACHE/tokenized/` by the hash of the tokenizer, the examples' content and `max_length`, so seeds and
  models that share a tokenizer reuse it;
- a step's examples are concatenated into one padding-free row with per-example position ids; attention runs per
  example (`varlen_attention`: flash varlen on CUDA, one causal SDPA per example elsewhere), so no token attends
  across examples and no compute goes to padding;
- the loss is an exact cross-entropy over assistant tokens only, computed from the final hidden states in chunks
  (`chunked_cross_entropy`): full-vocabulary logits exist for one chunk of assistant tokens at a time, and the
  gradients of the head are formed in the same pass.
The sampler (and so each step's examples) is the trainer's own, so losses equal the padded path's up to rounding.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import SFTConfig, SFTTrainer

from langmix.config import ModelConfig, TrainingConfig
from langmix.errors import UserInputError
from langmix.models import load_model, load_tokenizer
from langmix.records import Example
from langmix.timing import COMPUTE_SECONDS
from langmix.tokenization import tokenizer_fingerprint

log = logging.getLogger(__name__)


class LabelMaskError(UserInputError):
    """An example whose loss mask covers no token or every token."""


class _StepClock(TrainerCallback):
    """Counts the time of each optimizer step (forward, backward, update) as model compute."""

    def __init__(self) -> None:
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        COMPUTE_SECONDS["train"] += time.perf_counter() - self._start


class _NoCheckpointAtEnd(TrainerCallback):
    """No checkpoint after the last step: the final weights are saved next (and the trainer state with them), so a
    checkpoint there (weights, optimizer state) could only resume a finished run. A third of the checkpoint time of
    the quickstart, whose runs save every 40 of 120 steps."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False


def assistant_masks(tokenizer, examples: list[Example], max_length: int) -> list[list[int]]:
    """The loss mask of each example as TRL builds it: the chat template's assistant mask, truncated."""
    out = []
    for ex in examples:
        enc = tokenizer.apply_chat_template(ex.messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        out.append(list(enc["assistant_masks"])[:max_length])
    return out


def check_label_masks(masks: list[list[int]], examples: list[Example]) -> None:
    """Every example must train on some tokens (the assistant turn) and mask others (the prompt).

    TRL would silently drop an example whose assistant turn was truncated away; here it is an error.
    """
    for ex, mask in zip(examples, masks):
        trained = sum(1 for bit in mask if bit)
        if trained == 0:
            raise LabelMaskError(f"example {ex.id}: every label is masked (the assistant turn is cut off at "
                                 f"max_length={len(mask)}? raise training.max_length)")
        if trained == len(mask):
            raise LabelMaskError(f"example {ex.id}: no label is masked; the chat template does not separate "
                                 f"the prompt from the answer")


class IdentityError(UserInputError):
    """An output directory that holds another run's checkpoints."""


def _checkpoint_problem(ckpt: Path) -> str | None:
    """Why a checkpoint directory cannot be resumed from (None when it is complete).

    A process killed while saving can leave a truncated file: safetensors files must be as long as their header
    says, and torch's zip-format files (optimizer, scheduler, RNG state) must have a readable central directory.
    """
    import struct
    import zipfile

    if not (ckpt / "trainer_state.json").exists():
        return "trainer_state.json is missing"
    try:
        json.loads((ckpt / "trainer_state.json").read_text())
    except ValueError:
        return "trainer_state.json is not valid JSON"
    for f in sorted(ckpt.iterdir()):
        if f.suffix == ".safetensors":
            size = f.stat().st_size
            with open(f, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    return f"{f.name} is truncated"
                (n,) = struct.unpack("<Q", head)
                try:
                    header = json.loads(fh.read(n))
                except ValueError:
                    return f"{f.name} has a broken header"
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            if size != 8 + n + end:
                return f"{f.name} is truncated ({size} of {8 + n + end} bytes)"
        elif f.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(f) as z:
                    z.namelist()
            except (zipfile.BadZipFile, OSError):
                return f"{f.name} is truncated or not a torch archive"
    return None


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` directory; an incomplete newer one is skipped with a warning."""
    candidates = sorted((p for p in ckpt_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                        key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in candidates:
        problem = _checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        log.warning("%s is incomplete (%s); falling back to an earlier checkpoint", ckpt, problem)
    return None


def check_identity(out_dir: Path, identity: dict) -> None:
    """Refuse to resume checkpoints in `out_dir` that another run (another config or data) wrote."""
    path = out_dir / "identity.json"
    has_checkpoints = any((out_dir / "checkpoints").glob("checkpoint-*")) or (out_dir / "final").exists()
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded != identity:
            raise IdentityError(f"{out_dir} holds another run's training: recorded {recorded}, this run "
                                f"{identity}; use another --out or delete that directory")
    elif has_checkpoints:
        raise IdentityError(f"{out_dir} holds checkpoints of an unknown run (no identity.json); use another --out "
                            f"or delete them")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(identity, indent=2, sort_keys=True))
    tmp.replace(path)


def training_identity(model_cfg: ModelConfig, cfg: TrainingConfig, seed: int, examples: list[Example]) -> dict:
    """What makes two trainings the same run: model, training settings, seed and the examples' content."""
    import hashlib

    from langmix.config import TRAINING_FIELDS_NOT_IN_KEY, config_hash

    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.model_dump_json().encode())
    settings = cfg.model_dump(mode="json")
    for key in TRAINING_FIELDS_NOT_IN_KEY:
        settings.pop(key, None)
    return {"model": config_hash(model_cfg), "training": config_hash(settings), "seed": seed,
            "data": h.hexdigest()[:16], "n_examples": len(examples)}


# ---------------------------------------------------------------------------------------------------------------
# Fast SFT path: tokenisation cache, padding-free batches, per-example attention, chunked cross-entropy.

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

    from langmix.models import cache_root

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
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=flat_ids.astype(np.int32 if flat_ids.max(initial=0) < 2**31 else np.int64),
             mask=flat_mask, offsets=offsets)
    tmp.replace(path)
    return tok


class TokenRows(torch.utils.data.Dataset):
    """A tokenised mixture as the trainer's dataset: per example, int64 arrays of ids and labels (-100 where no
    loss). Plain indexing: an Arrow dataset converts each step's rows to Python lists."""

    def __init__(self, tok: TokenizedMixture) -> None:
        import numpy as np

        self.input_ids = [np.asarray(row, dtype=np.int64) for row in tok.input_ids]
        self.labels = [np.asarray(row, dtype=np.int64) for row in tok.labels()]

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


class PaddingFreeCollator:
    """A step's examples as one row: ids concatenated, position ids restarting at 0 for each example.

    Besides `input_ids`, `position_ids` and `labels` (-100 where no loss), it returns what the attention and the
    loss need so that the hot loop does no host work: `cu_seq_lens_q/k` (int32 offsets, the flash-attention
    varlen convention, also read by `varlen_attention`), `max_length_q/k`, `seq_bounds` (the same offsets as Python
    ints), `shift_labels` (each position's next-token target within its own example), and `loss_positions` /
    `loss_targets` (the positions with a target and the targets).
    """

    def __call__(self, features: list[dict]) -> dict:
        import numpy as np

        lengths = [len(f["input_ids"]) for f in features]
        offsets = np.cumsum([0] + lengths)
        total = int(offsets[-1])
        ids = np.concatenate([np.asarray(f["input_ids"], dtype=np.int64) for f in features])
        labels = np.concatenate([np.asarray(f["labels"], dtype=np.int64) for f in features])
        positions = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
        labels[offsets[:-1]] = -100  # the first token of an example is never a target
        shift = np.full(total, -100, dtype=np.int64)
        shift[:-1] = labels[1:]
        shift[offsets[1:] - 1] = -100  # an example's last token predicts nothing (the next one is another example)
        loss_positions = np.flatnonzero(shift != -100)
        bounds = tuple(int(o) for o in offsets)
        cu = torch.from_numpy(offsets.astype(np.int32))
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


def _register_varlen() -> str:
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


def _backbone_and_head(model):
    """The decoder stack (returning final hidden states) and the output projection of a causal LM (PEFT or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = base.base_model if base.base_model is not base else None
    head = base.get_output_embeddings()
    if backbone is None or head is None or getattr(head, "bias", None) is not None:
        return None, None
    return backbone, head


def sequence_losses(model, batch: dict, chunk: int = 1024, softcap: float | None = None) -> torch.Tensor:
    """Summed assistant-token loss of a padding-free batch (from `PaddingFreeCollator`)."""
    backbone, head = _backbone_and_head(model)
    hidden = backbone(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                      cu_seq_lens_q=batch["cu_seq_lens_q"], cu_seq_lens_k=batch["cu_seq_lens_k"],
                      max_length_q=batch["max_length_q"], max_length_k=batch["max_length_k"],
                      seq_bounds=batch["seq_bounds"]).last_hidden_state
    picked = hidden[0].index_select(0, batch["loss_positions"])
    return chunked_cross_entropy(picked, head.weight, batch["loss_targets"], chunk, softcap)


class PackedSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is `sequence_losses` on padding-free batches (no full-vocabulary logits, no per-step
    metrics that need them)."""

    loss_chunk_tokens = 1024
    _flops_per_token: float | None = None

    def floating_point_ops(self, inputs) -> float:
        """The Trainer's 6 x parameters x tokens, with the parameter count taken once (not by walking every
        parameter at every step)."""
        if self._flops_per_token is None:
            self._flops_per_token = super().floating_point_ops(inputs) / max(1, inputs["input_ids"].numel())
        return self._flops_per_token * inputs["input_ids"].numel()

    def _save_checkpoint(self, model, trial):
        """Trainer's checkpoint without TRL's model card (README.md) in every checkpoint."""
        Trainer._save_checkpoint(self, model, trial)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        unwrapped = self.accelerator.unwrap_model(model)
        softcap = getattr(unwrapped.config.get_text_config(), "final_logit_softcapping", None)
        with self.accelerator.autocast():  # the decoder is called directly, past accelerate's autocast wrapper
            total = sequence_losses(unwrapped, inputs, self.loss_chunk_tokens, softcap)
        n = inputs["loss_targets"].numel() if num_items_in_batch is None else num_items_in_batch
        loss = total / torch.as_tensor(n, device=total.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return (loss, None) if return_outputs else loss


def sft_config(cfg: TrainingConfig, seed: int, ckpt_dir: Path, show_progress: bool) -> SFTConfig:
    extra = {}
    if cfg.group_by_length:
        extra["train_sampling_strategy"] = "group_by_length"
    return SFTConfig(**extra,
        output_dir=str(ckpt_dir), assistant_only_loss=True, max_length=cfg.max_length,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps, report_to=cfg.report_to, seed=seed, data_seed=seed,
        dataloader_num_workers=0, disable_tqdm=not show_progress, use_cpu=not torch.cuda.is_available(),
        bf16=cfg.bf16, fp16=False, dataset_num_proc=None, save_only_model=False,
        activation_checkpointing=cfg.activation_checkpointing,
    )


def train(model_cfg: ModelConfig, model_path: str, examples: list[Example], cfg: TrainingConfig, seed: int,
          out_dir: Path, show_progress: bool = True, callbacks: list[TrainerCallback] | None = None,
          identity: dict | None = None):
    """Fine-tune on `examples`; resumes from the newest complete checkpoint in `out_dir/checkpoints`.

    `identity` (default: `training_identity(...)`) is recorded in `out_dir/identity.json`; checkpoints written by
    a run with another identity are never resumed (IdentityError). Returns the trained model (LoRA merged into
    the weights) and its tokenizer; the final weights (for LoRA: the adapter) are saved to `out_dir/final`.
    """
    if not examples:
        raise ValueError("cannot train on an empty mixture")
    check_identity(out_dir, identity or training_identity(model_cfg, cfg, seed, examples))
    tokenizer = load_tokenizer(model_cfg, model_path, reuse=True)  # TRL changes none of its settings
    model = load_model(model_cfg, model_path, reuse=True)
    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    ckpt_dir = out_dir / "checkpoints"
    packing = cfg.packing and _backbone_and_head(model)[0] is not None
    if cfg.packing and not packing:
        log.warning("%s: no separate decoder/output head (or a biased head); training with padded batches",
                    model_cfg.name)
    args = sft_config(cfg, seed, ckpt_dir, show_progress)
    common = dict(processing_class=tokenizer, peft_config=peft_config, callbacks=[_StepClock(), _NoCheckpointAtEnd(), *(callbacks or [])])
    if packing:
        tok = tokenize_mixture(tokenizer, examples, cfg.max_length)
        check_label_masks(tok.masks, examples)
        dataset = TokenRows(tok)
        args.dataset_kwargs = {"skip_prepare_dataset": True}
        args.assistant_only_loss = False  # the labels already mask everything but the assistant turns
        trainer = PackedSFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"input_ids": [[0]]}),
                                   data_collator=PaddingFreeCollator(), **common)
        trainer.train_dataset = dataset  # TRL's constructor takes only `datasets` types; the loader reads arrays
        trainer.loss_chunk_tokens = cfg.loss_chunk_tokens
        original_attn = model.config._attn_implementation
        trainer.model.set_attn_implementation(_register_varlen())
    else:
        dataset = Dataset.from_list([{"messages": ex.messages} for ex in examples])
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, **common)
        labels = trainer.train_dataset["labels"]  # (packed: built from masks check_label_masks passed above)
        if len(labels) != len(examples) or any(all(t != -100 for t in row) for row in labels):
            # TRL silently drops examples whose assistant turn was truncated away; name the culprits instead.
            check_label_masks(assistant_masks(tokenizer, examples, cfg.max_length), examples)
            raise LabelMaskError(f"the trainer kept {len(labels)} of {len(examples)} examples")
    if not show_progress:  # without a progress bar the trainer prints every log dict to stdout
        trainer.remove_callback(PrinterCallback)
    resume = latest_checkpoint(ckpt_dir)
    if resume:
        log.info("resuming from %s", resume)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        if packing:  # generation and saved models use the model's own attention again
            trainer.model.set_attn_implementation(original_attn)
    trainer.save_model(str(out_dir / "final"))
    tokenizer.save_pretrained(str(out_dir / "final"))
    trainer.state.save_to_json(str(out_dir / "final" / "trainer_state.json"))  # the log history, every step
    history = [h for h in trainer.state.log_history if "loss" in h]
    (out_dir / "train_summary.json").write_text(json.dumps({
        "global_step": trainer.state.global_step, "resumed_from": str(resume) if resume else None,
        "train_loss": result.training_loss, "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None, "n_examples": len(examples)}, indent=2))
    trained = trainer.model
    if peft_config is not None:
        trained = trained.merge_and_unload()
    trained.eval()
    return trained, tokenizer
