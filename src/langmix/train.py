"""Supervised fine-tuning with TRL's SFTTrainer: assistant-only loss, full or LoRA, checkpoints and resume.

With `training.packing` (the default) the SFT path is langmix's own around TRL's trainer loop (`packing.py`):
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

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import SFTConfig, SFTTrainer

from langmix import durable
from langmix.config import ModelConfig, TrainingConfig, lora_targets
from langmix.errors import UserInputError, check_output
from langmix.models import CHAT_PRESETS, load_model, load_tokenizer
from langmix.packing import (PaddingFreeCollator, TokenRows, backbone_and_head, register_varlen, sequence_losses,
                             tokenize_mixture)
from langmix.records import Example
from langmix.train_checkpoints import latest_checkpoint
from langmix.train_callbacks import (Guard, LogLastStep, LossSteps, NoCheckpointAtEnd, StepClock, logged_loss_steps,
                                      mean_logged_loss)

log = logging.getLogger(__name__)


class LabelMaskError(UserInputError):
    """An example whose loss mask covers no token or every token, or no longer holds its final answer."""


def assistant_masks(tokenizer, examples: list[Example], max_length: int | None) -> list[list[int]]:
    """The loss mask of each example as TRL builds it: the chat template's assistant mask, truncated (None: whole)."""
    out = []
    for ex in examples:
        enc = tokenizer.apply_chat_template(ex.messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        out.append(list(enc["assistant_masks"])[:max_length])
    return out


def check_label_masks(masks: list[list[int]], examples: list[Example], max_length: int) -> None:
    """Every example must train on some tokens (the assistant turn) and mask others (the prompt).

    TRL would silently drop an example whose assistant turn was truncated away; here it is an error.
    """
    for ex, mask in zip(examples, masks):
        trained = sum(1 for bit in mask if bit)
        if trained == 0 and (not ex.messages or ex.messages[-1]["role"] != "assistant"):
            raise LabelMaskError(f"example {ex.id}: no assistant turn to learn from (its last message is "
                                 f"{ex.messages[-1]['role'] if ex.messages else 'missing'!r})")
        if trained == 0:
            why = (f"the assistant turn is cut off at training.max_length={max_length}; raise it"
                   if len(mask) >= max_length else "the chat template marks no assistant token; set the model's "
                   f"`chat_template` to a preset that does ({', '.join(CHAT_PRESETS)}) or to Jinja text with "
                   "{% generation %} around the assistant's reply")
            raise LabelMaskError(f"example {ex.id}: every label is masked ({why})")
        if trained == len(mask):
            raise LabelMaskError(f"example {ex.id}: no label is masked; the chat template does not separate "
                                 f"the prompt from the answer")


def last_turn_span(mask: list[int]) -> tuple[int, int]:
    """[start, end) of the last run of trained tokens in an example's whole (untruncated) loss mask: its final
    assistant turn (a template's `{% generation %}` block); (0, 0) where nothing is trained."""
    end = len(mask) - next((k for k, bit in enumerate(reversed(mask)) if bit), len(mask))
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start, end


def check_cut_answers(tokenizer, examples: list[Example], lengths: list[int], max_length: int) -> None:
    """Where `max_length` cut an example inside or before its final assistant turn (the answer a scorer reads).

    Cut inside it, the example trains on an answer without its end: a warning, with a count. Cut before it (a
    multi-turn example whose last turn starts past `max_length`, behind a long user turn or tool schemas), it would
    train on its earlier turns only, as if they were the answer: a LabelMaskError, as for a single-turn example
    whose answer is cut away entirely (`check_label_masks`). Truncation keeps the start of an example, so a cut
    loses trained tokens only from the end: an example is cut when its whole encoding has trained tokens past
    `max_length`. `lengths` are the tokenised (truncated) examples' lengths: only those `max_length` long can have
    been cut, and those are encoded whole to tell (an answer that ends exactly at `max_length` is whole)."""
    maybe = [ex for ex, n in zip(examples, lengths) if n >= max_length]
    gone, cut = [], []
    for ex, mask in zip(maybe, assistant_masks(tokenizer, maybe, None)):
        start, end = last_turn_span(mask)
        if end > max_length:
            (gone if start >= max_length else cut).append(ex.id)
    if gone:
        raise LabelMaskError(f"{len(gone)} of {len(examples)} training examples lose their last assistant turn "
                             f"entirely at training.max_length={max_length} ({_shown(gone)}): they would train on "
                             f"earlier turns only; raise training.max_length")
    if cut:
        log.warning("%d of %d training examples are cut at training.max_length=%d inside their answer (%s): they "
                    "train on answers without their ends; raise training.max_length", len(cut), len(examples),
                    max_length, _shown(cut))


def _shown(ids: list[str], k: int = 3) -> str:
    return ", ".join(ids[:k]) + (" ..." if len(ids) > k else "")


def _check_lora_targets(model, targets: str | list[str]) -> None:
    """training.lora_target_modules must name modules of the model, as PEFT matches them (a list: module names or
    their last part; a string: a regular expression over the full names), else one line naming what there is; and
    not the model's output layer, whatever its name (TRL refuses an adapter there with a traceback: the loss is
    computed from the head's weight directly, so it would never be trained)."""
    if targets == "all-linear":
        return
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(targets, str):
        found = any(lora_targets(targets, name) for name in names)
        missing = [] if found else [targets]
    else:
        missing = [t for t in targets if not any(lora_targets([t], name) for name in names)]
    if missing:
        linear = sorted({name.split(".")[-1] for name, module in model.named_modules()
                         if isinstance(module, torch.nn.Linear)})
        raise UserInputError(f"training.lora_target_modules: {', '.join(map(repr, missing))} matches no module of "
                             f"the model (its linear layers: {', '.join(linear)}; or 'all-linear')")
    head = model.get_output_embeddings()
    head_name = next((name for name, module in model.named_modules() if module is head and name), None)
    if head_name is not None and lora_targets(targets, head_name):
        raise UserInputError(f"training.lora_target_modules: {targets!r} targets {head_name}, the model's output "
                             f"layer: a LoRA adapter there is never trained (TRL computes the loss from its weight "
                             f"directly); leave it out ('all-linear' does) or use training.method=full")


class IdentityError(UserInputError):
    """An output directory that holds another run's checkpoints."""


def check_identity(out_dir: Path, identity: dict) -> None:
    """Refuse to resume checkpoints in `out_dir` that another run (another config or data) wrote. A recorded
    identity without checkpoints or final weights (a run that failed before its first save) is replaced. An
    `out_dir` that cannot be written (a file, under one, not writable) is refused here, before any model is
    loaded."""
    check_output(out_dir, "training output")
    path = out_dir / "identity.json"
    has_checkpoints = any((out_dir / "checkpoints").glob("checkpoint-*")) or (out_dir / "final").exists()
    if path.exists():
        recorded = durable.read_json_object(path)
        if recorded is None and has_checkpoints:  # written whole (durable): damaged from outside
            raise IdentityError(f"{path} is unreadable, so langmix cannot tell which run wrote the checkpoints in "
                                f"{out_dir}; use another --out or delete them")
        if recorded != identity and has_checkpoints:  # a run that saved nothing binds nothing (it failed early)
            raise IdentityError(f"{out_dir} holds another run's training: recorded {recorded}, this run "
                                f"{identity}; use another --out or delete that directory")
    elif has_checkpoints:
        raise IdentityError(f"{out_dir} holds checkpoints of an unknown run (no identity.json); use another --out "
                            f"or delete them")
    out_dir.mkdir(parents=True, exist_ok=True)
    durable.write_text(path, json.dumps(identity, indent=2, sort_keys=True))


def finished(out_dir: Path, identity: dict) -> bool:
    """Whether `out_dir` holds this very training, finished: its identity, final weights and summary (a re-run of
    `train` then has nothing to do; resuming would redo the steps after the last checkpoint)."""
    return (durable.read_json_object(out_dir / "identity.json") == identity and (out_dir / "final").is_dir()
            and (out_dir / "train_summary.json").exists())


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


class LeanCheckpointSFTTrainer(SFTTrainer):
    """SFTTrainer whose checkpoints hold what resuming reads: weights, optimizer, scheduler, RNG and trainer state.
    Not TRL's model card (README.md), and not the tokenizer: training never changes it, a resumed run reads it from
    the base model as the first attempt did, and `final/` keeps it (Gemma-3's tokenizer.json is 33 MB)."""

    def _save_checkpoint(self, model, trial):
        tokenizer, self.processing_class = self.processing_class, None
        try:
            Trainer._save_checkpoint(self, model, trial)
        finally:
            self.processing_class = tokenizer


class PackedSFTTrainer(LeanCheckpointSFTTrainer):
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


class _RatioWarmupSFTConfig(SFTConfig):
    """SFTConfig whose `warmup_steps` is always a share of the training steps (langmix's `warmup_ratio`, 0 to 1).
    transformers (5.x) has no `warmup_ratio` and reads a `warmup_steps` of 1 or more as a step count, so a ratio
    of 1.0 warmed up for 1 step, not all of them. Below 1 this is transformers' own formula, so every other ratio
    gives the steps it gave before: only `warmup_ratio: 1.0` trains differently. Run keys and identities hold
    `warmup_ratio` as before (study/grid.py hashes the config field, whose value does not change), so a run
    trained at 1.0 before this fix keeps its key, with its 1 warmup step."""

    def get_warmup_steps(self, num_training_steps: int) -> int:
        return math.ceil(num_training_steps * self.warmup_steps)


def sft_config(cfg: TrainingConfig, seed: int, ckpt_dir: Path, show_progress: bool) -> SFTConfig:
    extra = {}
    if cfg.group_by_length:
        extra["train_sampling_strategy"] = "group_by_length"
    return _RatioWarmupSFTConfig(**extra,
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
          identity: dict | None = None, guard: Callable[[], None] | None = None):
    """Fine-tune on `examples`; resumes from the newest complete checkpoint in `out_dir/checkpoints`.

    `identity` (default: `training_identity(...)`) is recorded in `out_dir/identity.json`; checkpoints written by
    a run with another identity are never resumed (IdentityError). Returns the trained model (LoRA merged into
    the weights) and its tokenizer; the final weights (for LoRA: the adapter) are saved to `out_dir/final`.
    `guard` is called after every step and before the final weights are written; it raises to stop the run.
    """
    if not examples:
        raise ValueError("cannot train on an empty mixture")
    check_identity(out_dir, identity or training_identity(model_cfg, cfg, seed, examples))
    tokenizer = load_tokenizer(model_cfg, model_path, reuse=True)  # TRL changes none of its settings
    model = load_model(model_cfg, model_path, reuse=True)
    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig

        _check_lora_targets(model, cfg.lora_target_modules)
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    ckpt_dir = out_dir / "checkpoints"
    packing = cfg.packing and backbone_and_head(model)[0] is not None
    if cfg.packing and not packing:
        log.warning("%s: no separate decoder/output head (or a biased head); training with padded batches",
                    model_cfg.name)
    args = sft_config(cfg, seed, ckpt_dir, show_progress)
    common = dict(processing_class=tokenizer, peft_config=peft_config,
                  callbacks=[StepClock(), LossSteps(), LogLastStep(), NoCheckpointAtEnd(),
                             *([Guard(guard)] if guard else []), *(callbacks or [])])
    if packing:
        tok = tokenize_mixture(tokenizer, examples, cfg.max_length)
        check_label_masks(tok.masks, examples, cfg.max_length)
        check_cut_answers(tokenizer, examples, [len(m) for m in tok.masks], cfg.max_length)
        dataset = TokenRows(tok)
        args.dataset_kwargs = {"skip_prepare_dataset": True}
        args.assistant_only_loss = False  # the labels already mask everything but the assistant turns
        args.remove_unused_columns = False  # the rows hold what the collator reads (TRL would keep ids and labels)
        trainer = PackedSFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"input_ids": [[0]]}),
                                   data_collator=PaddingFreeCollator(), **common)
        trainer.train_dataset = dataset  # TRL's constructor takes only `datasets` types; the loader reads arrays
        trainer.loss_chunk_tokens = cfg.loss_chunk_tokens
        original_attn = model.config._attn_implementation
        trainer.model.set_attn_implementation(register_varlen())
    else:
        dataset = Dataset.from_list([{"messages": ex.messages} for ex in examples])
        trainer = LeanCheckpointSFTTrainer(model=model, args=args, train_dataset=dataset, **common)
        labels = trainer.train_dataset["labels"]  # (packed: built from masks check_label_masks passed above)
        if len(labels) != len(examples) or any(all(t != -100 for t in row) for row in labels):
            # TRL silently drops examples whose assistant turn was truncated away; name the culprits instead.
            check_label_masks(assistant_masks(tokenizer, examples, cfg.max_length), examples, cfg.max_length)
            raise LabelMaskError(f"the trainer kept {len(labels)} of {len(examples)} examples")
        check_cut_answers(tokenizer, examples, [len(row) for row in labels], cfg.max_length)
    if not show_progress:  # without a progress bar the trainer prints every log dict to stdout
        trainer.remove_callback(PrinterCallback)
    resume = latest_checkpoint(ckpt_dir)
    if resume:
        log.info("resuming from %s", resume)
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        if packing:  # generation and saved models use the model's own attention again
            trainer.model.set_attn_implementation(original_attn)
    if guard:
        guard()
    trainer.save_model(str(out_dir / "final"))
    tokenizer.save_pretrained(str(out_dir / "final"))
    trainer.state.save_to_json(str(out_dir / "final" / "trainer_state.json"))  # the log history, every step
    history = [h for h in trainer.state.log_history if "loss" in h]
    (out_dir / "train_summary.json").write_text(json.dumps({
        "global_step": trainer.state.global_step, "resumed_from": str(resume) if resume else None,
        "train_loss": mean_logged_loss(history), "train_loss_steps": sum(logged_loss_steps(history)),
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None, "n_examples": len(examples)}, indent=2))
    trained = trainer.model
    if peft_config is not None:
        trained = trained.merge_and_unload()
    trained.eval()
    return trained, tokenizer
