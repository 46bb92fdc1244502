"""GPU check: a Qwen3-1.7B-shaped model (random weights, bf16) trained with langmix's packed SFT path vs the plain
TRL `SFTTrainer` baseline on the same GPU, and langmix `generate` vs plain batched `model.generate`.

Prints non-padding tokens/s and MFU (6 x params x tokens over the bf16 dense matmul peak measured in the same run)
of each trainer, generated tokens/s of each generator, and ends with `langmix vs plain: N.NNx` (training).
If TRL is not installed, the baseline is a hand-written padded loop (AdamW, `model(..., labels=...)`).

    python benchmarks/gpu_train_eval.py            # on a CUDA machine
    LANGMIX_GPU_BENCH_TINY=1 python benchmarks/gpu_train_eval.py   # a tiny shape, on CPU, to test the script
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

QWEN3_1_7B = {  # Qwen/Qwen3-1.7B config.json (no hub access needed)
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 2048,
    "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "head_dim": 128, "hidden_act": "silu", "max_position_embeddings": 40960, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000, "tie_word_embeddings": True, "attention_bias": False, "attention_dropout": 0.0,
    "use_sliding_window": False, "sliding_window": None, "max_window_layers": 28, "bos_token_id": 151643,
    "eos_token_id": 151645, "torch_dtype": "bfloat16",
}
TINY = dict(QWEN3_1_7B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16)  # vocabulary: the tokenizer's
LANGS = ["en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te"]


def log(msg: str) -> None:
    print(msg, flush=True)


def bench_config(tok, tiny: bool):
    """The benchmark model's config: Qwen3-1.7B's shape (or a tiny one with the tokenizer's vocabulary), with the
    tokenizer's special tokens."""
    from transformers import AutoConfig

    cfg = dict(TINY if tiny else QWEN3_1_7B, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
               bos_token_id=None, **({"vocab_size": len(tok)} if tiny else {}))
    return AutoConfig.for_model(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype")})


def main() -> None:
    import torch

    tiny = bool(os.environ.get("LANGMIX_GPU_BENCH_TINY"))
    cuda = torch.cuda.is_available() and not tiny
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    steps, warmup = (24, 4) if cuda else (3, 1)
    # batch 16: the plain trainer materialises fp32 logits over Qwen's 152k vocabulary for every padded position
    # (16 x ~1,000 x 152k x 4 bytes, twice), which at 32 rows would come near the H100's 80 GB
    batch = 16 if cuda else 4
    max_len = 1536  # the longest example (Telugu, ~1,040 tokens with SmolLM2's tokenizer) is not cut
    n_eval, eval_batch, cap = (256, 64, 48) if cuda else (8, 4, 6)
    here = Path(os.environ.get("LANGMIX_GPU_BENCH_DATA", Path(__file__).resolve().parents[1] / ".gpubench"))
    tmp = Path(tempfile.mkdtemp(prefix="langmix-gpu-bench-"))
    os.environ.setdefault("LANGMIX_CACHE", str(tmp / "cache"))

    from transformers import AutoModelForCausalLM, AutoTokenizer

    import importlib.metadata as md

    versions = []
    for name in ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "pydantic", "pyarrow"):
        try:
            versions.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            versions.append(f"{name} missing")
    log("versions: " + ", ".join(versions))
    from langmix.config import ModelConfig, TrainingConfig
    from langmix.evaluate.generate import SHARED_PREFIX_MIN, generate, plain_generate
    from langmix.records import Example
    from langmix.train import tokenize_mixture, train

    tok = AutoTokenizer.from_pretrained(here / "tokenizer")
    examples = [Example.model_validate_json(line) for line in (here / "train.jsonl").read_text().splitlines()]
    evals = [Example.model_validate_json(line) for line in (here / "eval.jsonl").read_text().splitlines()][:n_eval]
    config = bench_config(tok, tiny)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model_dir = tmp / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    params = sum(p.numel() for p in model.parameters())  # tied embeddings: the head's matmul counts them once
    lengths = [len(r) for r in tokenize_mixture(tok, examples, max_len).input_ids]
    log(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}; model {config.model_type} "
        f"{params / 1e9:.3f}B params, {dtype}; {len(examples)} examples, {sum(lengths) / len(lengths):.0f} tokens "
        f"mean ({min(lengths)}-{max(lengths)}); batch {batch}, {steps} steps, first {warmup} untimed")

    # dense matmul peak of this device, same dtype
    n = 8192 if cuda else 512
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(10):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        if cuda:
            torch.cuda.synchronize()
        best = max(best, 5 * 2 * n ** 3 / (time.perf_counter() - t))
    peak = best
    del a, b
    log(f"dense {dtype} matmul peak measured: {peak / 1e12:.1f} TFLOP/s")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.t, self.steps = 0.0, []

        def on_step_begin(self, args, state, control, **kw):
            sync()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            sync()
            self.steps.append(time.perf_counter() - self.t)

    def count_wrap(cls, record, count):
        orig = cls.__call__

        def wrapped(self, *a, **kw):
            out = orig(self, *a, **kw)
            record.append(count(out))
            return out

        cls.__call__ = wrapped
        return lambda: setattr(cls, "__call__", orig)

    def report(name, times, tokens):
        rate = sum(tokens[warmup:steps]) / sum(times[warmup:steps])
        if cuda:
            log(f"{name}: peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB; "
                f"{sum(tokens[warmup:steps]) / (steps - warmup):.0f} tokens per step")
            torch.cuda.reset_peak_memory_stats()
        log(f"{name:<34} {rate:10.0f} non-padding tokens/s  MFU {6 * params * rate / peak:6.1%} of measured peak"
            + (f" ({6 * params * rate / 989e12:5.1%} of 989 TFLOP/s nominal)" if cuda else ""))
        return rate

    rates = {}
    del model
    if cuda:
        torch.cuda.empty_cache()
    # plain baseline: TRL SFTTrainer defaults (padded batches), or a hand-written padded loop without TRL
    try:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
        has_trl = True
    except Exception as exc:  # noqa: BLE001
        log(f"TRL unavailable ({exc!r}); plain baseline is a hand-written padded loop")
        has_trl = False
    clock, tokens = Clock(), []
    plain_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)

    def run_trl(plain_model) -> float:
        restore = count_wrap(DataCollatorForLanguageModeling, tokens,
                             lambda b: int(b["attention_mask"].sum()) if "attention_mask" in b
                             else int((b["input_ids"] != tok.pad_token_id).sum()))
        try:
            args = SFTConfig(output_dir=str(tmp / "plain"), assistant_only_loss=True, max_length=max_len,
                             per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-5,
                             report_to=["none"], save_strategy="no", seed=0, data_seed=0, use_cpu=not cuda,
                             bf16=cuda, disable_tqdm=True, logging_steps=1000)
            log(f"TRL SFTConfig: gradient_checkpointing={args.gradient_checkpointing}, "
                f"padding_free={getattr(args, 'padding_free', None)}, packing={args.packing}")
            trainer = SFTTrainer(model=plain_model, args=args, processing_class=tok, callbacks=[clock],
                                 train_dataset=Dataset.from_list([{"messages": ex.messages} for ex in examples]))
            trainer.train()
        finally:
            restore()
        return report("plain TRL SFTTrainer (defaults)", clock.steps, tokens)

    if has_trl:
        try:
            rates["plain"] = run_trl(plain_model)
        except Exception as exc:  # noqa: BLE001  (a TRL/transformers version mismatch on the GPU machine)
            import traceback

            traceback.print_exc()
            log(f"plain TRL SFTTrainer failed ({exc!r}); plain baseline is a hand-written padded loop")
            has_trl = False
            del plain_model
            if cuda:
                torch.cuda.empty_cache()
            plain_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
            clock, tokens = Clock(), []
    if not has_trl:
        mix = tokenize_mixture(tok, examples, max_len)
        opt = torch.optim.AdamW(plain_model.parameters(), lr=1e-5)
        g = torch.Generator().manual_seed(0)
        order = torch.randperm(len(examples), generator=g).tolist()
        times = []
        for s in range(steps):
            idx = order[(s * batch) % len(order):][:batch]
            width = max(len(mix.input_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), tok.pad_token_id)
            lab = torch.full((len(idx), width), -100)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                k = len(mix.input_ids[i])
                ids[r, :k] = torch.tensor(mix.input_ids[i])
                lab[r, :k] = torch.tensor(mix.labels()[i])
                att[r, :k] = 1
            tokens.append(int(att.sum()))
            sync()
            t = time.perf_counter()
            loss = plain_model(input_ids=ids.to(device), attention_mask=att.to(device), labels=lab.to(device)).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            times.append(time.perf_counter() - t)
        rates["plain"] = report("plain padded loop (no TRL)", times, tokens)
        del opt
    del plain_model
    if cuda:
        torch.cuda.empty_cache()

    # langmix: train() (packing, varlen attention, chunked CE over assistant tokens)
    import langmix.train as lt
    from langmix import packing

    clock, tokens = Clock(), []
    restore = count_wrap(lt.PaddingFreeCollator, tokens, lambda b: int(b["input_ids"].numel()))
    model_cfg = ModelConfig(name="qwen3-1.7b-shape", source="hf", path=str(model_dir),
                            dtype="bfloat16" if cuda else "float32")
    cfg = TrainingConfig(max_steps=steps, batch_size=batch, max_length=max_len, learning_rate=1e-5, save_steps=10_000,
                         logging_steps=1000, warmup_ratio=0.0)
    try:
        trained, _ = train(model_cfg, str(model_dir), examples, cfg, 0, tmp / "langmix", show_progress=False,
                           callbacks=[clock])
        restore()
        rates["langmix"] = report("langmix train() (packing)", clock.steps, tokens)
        log(f"varlen flash kernel used: {not packing._VARLEN_BROKEN} {packing._VARLEN_BROKEN[:1]}")
        del trained
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        log(f"langmix train() failed: {exc!r}")
    if cuda:
        torch.cuda.empty_cache()

    # evaluation: langmix generate vs plain batched generate, same model and prompts
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    tok.padding_side = "left"
    generate(model, tok, evals[:eval_batch], 4, eval_batch)  # warm-up
    # the first pass of each shape runs ~3x slower on a GPU (measured: 23.5 s, then 8.1 and 7.8 s): alternate the
    # generators over rounds and keep each one's best pass
    runs = {"plain": lambda: plain_generate(model, tok, evals, cap, eval_batch),
            f"plain at batch {eval_batch // 2}": lambda: plain_generate(model, tok, evals, cap, eval_batch // 2),
            "langmix": lambda: generate(model, tok, evals, cap, eval_batch),
            "langmix, shared prefix": lambda: generate(model, tok, evals, cap, eval_batch,
                                                       shared_prefix_min=SHARED_PREFIX_MIN)}
    results: dict[str, tuple[list[str], float]] = {}
    for _ in range(3 if cuda else 1):
        for name, fn in runs.items():
            sync()
            t = time.perf_counter()
            outs = fn()
            sync()
            secs = time.perf_counter() - t
            results[name] = (outs, min(secs, results.get(name, (None, secs))[1]))
    n_tok = len(evals) * cap  # an upper bound: random weights may end a row early (end-of-turn token)
    for name, (outs, secs) in results.items():
        same = sum(a == b for a, b in zip(outs, results["plain"][0]))
        log(f"eval {name:<28} {n_tok / secs:9.0f} generated tokens/s (best pass {secs:.1f}s); "
            f"identical to plain: {same}/{len(outs)}")
    log("(in bf16, greedy outputs depend on how prompts are batched: compare langmix's count with plain's own at "
        "another batch size; benchmarks/gpu_eval_check.py compares them in fp32)")
    log(f"eval langmix vs plain generate: {results['plain'][1] / results['langmix'][1]:.2f}x")
    # continuous batching: per-example caps (1/4, 1/2, all of `cap`) make rows finish at different steps; static
    # batches vs rows joining the running batch, same caps, alternating
    caps = [max(1, cap * (1 + k % 3 + (k % 3 == 2)) // 4) for k in range(len(evals))]
    timed: dict[bool, tuple[list[str], float]] = {}
    for _ in range(2 if cuda else 1):
        for join in (False, True):
            sync()
            t = time.perf_counter()
            outs = generate(model, tok, evals, caps, eval_batch, join_rows=join)
            sync()
            timed[join] = (outs, min(time.perf_counter() - t, timed.get(join, (None, 1e9))[1]))
    same = sum(a == b for a, b in zip(timed[False][0], timed[True][0]))
    log(f"eval rows joining the running batch vs static batches (caps {cap // 4}-{cap}): "
        f"{timed[False][1] / timed[True][1]:.2f}x; identical: {same}/{len(evals)}")
    if "langmix" in rates:
        log(f"langmix vs plain: {rates['langmix'] / rates['plain']:.2f}x")


if __name__ == "__main__":
    main()
