"""SFT throughput: langmix's `train()` vs a plain TRL `SFTTrainer` script with default settings.

Same mixture (synthetic math + API examples in 8 languages), same Llama-shaped model (hidden 512 x 8 layers, random
weights, the tiny tokenizer), same batch size and steps, same sampler seed (so the same examples in each step).
Prints non-padding tokens/s of each, achieved FLOP/s (6 x params x tokens, params = all weights used in matmuls,
i.e. without the input embedding) over this machine's dense fp32 matmul peak measured in the same run, and ends
with `langmix vs plain: N.NNx`.

    .venv/bin/python benchmarks/train_throughput.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

STEPS, WARMUP, BATCH, MAX_LEN = 14, 2, 8, 256
LANGS = ["en", "es", "de", "ru", "zh", "ja", "sw", "th"]


def matmul_peak(seconds: float = 3.0, n: int = 1536) -> float:
    """Best dense fp32 matmul FLOP/s of this process (its thread count), over a few seconds."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t))
    return best


class StepTimer:
    """Trainer callback: seconds of each optimizer step (forward, backward, update)."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer.steps.append(time.perf_counter() - timer._t)

        self.steps: list[float] = []
        self.callback = _CB()


def count_tokens(cls, key: str, record: list[int], count):
    """Wrap a collator class's __call__ so each batch's non-padding token count is recorded (batch order)."""
    orig = cls.__call__

    def wrapped(self, *a, **kw):
        out = orig(self, *a, **kw)
        record.append(count(out))
        return out

    cls.__call__ = wrapped
    return lambda: setattr(cls, "__call__", orig)


def main() -> None:
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="langmix-train-bench-"))
    os.environ.setdefault("LANGMIX_CACHE", str(tmp / "cache"))
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from langmix import train as lt
    from langmix.config import ModelConfig, TinyModelConfig, TrainingConfig
    from langmix.data.synth import make_items, to_example
    from langmix.models import load_tokenizer, resolve_model_path

    torch.manual_seed(0)
    tiny = ModelConfig(name="tok", tiny=TinyModelConfig(pretrain_steps=1, corpus_items_per_language=300))
    tok = load_tokenizer(tiny, resolve_model_path(tiny))
    examples = [to_example(item, lang) for task in ("math", "api")
                for k, item in enumerate(make_items(task, "train", 8 * len(LANGS), 0))
                for lang in [LANGS[k % len(LANGS)]]]
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
        intermediate_size=1376, max_position_embeddings=512, tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None))
    model_dir = tmp / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    matmul_params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    model_cfg = ModelConfig(name="bench-512x8", source="hf", path=str(model_dir))
    lengths = [len(r) for r in lt.tokenize_mixture(tok, examples, MAX_LEN).input_ids]
    print(f"model: Llama hidden 512 x 8 layers, {matmul_params / 1e6:.1f}M matmul params, vocab {len(tok)}; "
          f"{len(examples)} examples, {sum(lengths) / len(lengths):.0f} tokens mean ({min(lengths)}-{max(lengths)}); "
          f"{STEPS} steps of {BATCH}, first {WARMUP} untimed; torch threads {torch.get_num_threads()}")

    peak = matmul_peak()
    print(f"dense fp32 matmul peak here: {peak / 1e9:.1f} GFLOP/s")

    def report(name: str, timer: StepTimer, tokens: list[int]) -> float:
        secs = sum(timer.steps[WARMUP:STEPS])
        toks = sum(tokens[WARMUP:STEPS])
        rate = toks / secs
        print(f"{name:<36} {rate:8.0f} non-padding tokens/s  {6 * matmul_params * rate / 1e9:7.1f} GFLOP/s  "
              f"MFU {6 * matmul_params * rate / peak:6.1%}")
        return rate

    rates = {}
    # plain: a ten-line SFTTrainer script with default settings
    timer, tokens = StepTimer(), []
    restore = count_tokens(DataCollatorForLanguageModeling, "plain", tokens,
                           lambda b: int(b["attention_mask"].sum()) if "attention_mask" in b
                           else int((b["input_ids"] != tok.pad_token_id).sum()))
    from datasets import Dataset

    args = SFTConfig(output_dir=str(tmp / "plain"), assistant_only_loss=True, max_length=MAX_LEN,
                     per_device_train_batch_size=BATCH, max_steps=STEPS, learning_rate=1e-3, report_to=["none"],
                     save_strategy="no", seed=0, data_seed=0, use_cpu=True, disable_tqdm=True, logging_steps=1000)
    trainer = SFTTrainer(model=LlamaForCausalLM.from_pretrained(model_dir), args=args, processing_class=tok,
                         train_dataset=Dataset.from_list([{"messages": ex.messages} for ex in examples]),
                         callbacks=[timer.callback])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    restore()
    rates["plain"] = report("plain SFTTrainer (defaults)", timer, tokens)

    # langmix: train() as a study runs it (packing, varlen attention, chunked CE over assistant tokens)
    cfg = TrainingConfig(max_steps=STEPS, batch_size=BATCH, max_length=MAX_LEN, learning_rate=1e-3,
                         save_steps=10_000, logging_steps=1000)
    timer, tokens = StepTimer(), []
    restore = count_tokens(lt.PaddingFreeCollator, "langmix", tokens, lambda b: int(b["input_ids"].numel()))
    t0 = time.perf_counter()
    lt.train(model_cfg, str(model_dir), examples, cfg, 0, tmp / "langmix", show_progress=False,
             callbacks=[timer.callback])
    wall = time.perf_counter() - t0
    restore()
    rates["langmix"] = report("langmix train() (packing)", timer, tokens)
    print(f"langmix train() wall time {wall:.1f}s, of which timed steps {sum(timer.steps):.1f}s")

    print(f"MFU langmix / plain: {rates['langmix'] / rates['plain']:.2f}x (same FLOP count per token)")
    print(f"langmix vs plain: {rates['langmix'] / rates['plain']:.2f}x")


if __name__ == "__main__":
    main()
