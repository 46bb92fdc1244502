"""GPU follow-up to `gpu_train_eval.py`'s evaluation: are langmix's greedy outputs different from plain `generate`
because of langmix, or because bf16 results depend on how prompts are batched? And is decoding there bound by the
GPU or by the host launching kernels?

Same Qwen3-1.7B shape (random weights) and prompts (`benchmarks/gpu_bench_data.py`). Prints, in bf16: plain
`generate` run twice (run-to-run), plain at batch 32 vs 64 (the control: same code, other batches), langmix vs
plain; the same comparison in fp32 with TF32 off; the timings of plain, langmix and langmix with a shared prefix,
alternating, twice each; and the time per decoding step at batch 1 vs batch 64.

    python benchmarks/gpu_eval_check.py       # on a CUDA machine, after gpu_bench_data.py here
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gpu_train_eval import bench_config, log

    tiny = bool(os.environ.get("LANGMIX_GPU_BENCH_TINY"))
    cuda = torch.cuda.is_available() and not tiny
    device = "cuda" if cuda else "cpu"
    os.environ.setdefault("LANGMIX_CACHE", tempfile.mkdtemp(prefix="langmix-gpu-check-"))
    from langmix.evaluate.generate import SHARED_PREFIX_MIN, generate, plain_generate
    from langmix.records import Example

    here = Path(os.environ.get("LANGMIX_GPU_BENCH_DATA", Path(__file__).resolve().parents[1] / ".gpubench"))
    tok = AutoTokenizer.from_pretrained(here / "tokenizer")
    tok.padding_side = "left"
    evals = [Example.model_validate_json(line) for line in (here / "eval.jsonl").read_text().splitlines()]
    n, batch, cap = (256, 64, 48) if cuda else (8, 4, 6)
    evals = evals[:n]
    config = bench_config(tok, tiny)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - t

    def same(a, b):
        return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"

    for dtype in (torch.bfloat16, torch.float32):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
        generate(model, tok, evals[:batch], 4, batch)  # warm-up
        k = n if dtype == torch.bfloat16 else n // 2
        subset = evals[:k]
        plain_a, t_plain = timed(lambda: plain_generate(model, tok, subset, cap, batch))
        plain_b, _ = timed(lambda: plain_generate(model, tok, subset, cap, batch))
        plain_half, _ = timed(lambda: plain_generate(model, tok, subset, cap, batch // 2))
        lm, t_lm = timed(lambda: generate(model, tok, subset, cap, batch))
        lm_shared, t_shared = timed(lambda: generate(model, tok, subset, cap, batch,
                                                     shared_prefix_min=SHARED_PREFIX_MIN))
        log(f"{dtype}, {k} prompts, cap {cap}: identical to plain (batch {batch}): plain again {same(plain_b, plain_a)}, "
            f"plain at batch {batch // 2} {same(plain_half, plain_a)}, langmix {same(lm, plain_a)}, "
            f"langmix shared prefix {same(lm_shared, plain_a)}; langmix vs plain at batch {batch // 2}: "
            f"{same(lm, plain_half)}")
        if dtype == torch.bfloat16:
            times: dict[str, list[float]] = {"plain": [t_plain], "langmix": [t_lm], "shared prefix": [t_shared]}
            for _ in range(2):
                times["plain"].append(timed(lambda: plain_generate(model, tok, subset, cap, batch))[1])
                times["langmix"].append(timed(lambda: generate(model, tok, subset, cap, batch))[1])
                times["shared prefix"].append(timed(lambda: generate(model, tok, subset, cap, batch,
                                                                     shared_prefix_min=SHARED_PREFIX_MIN))[1])
            for name, ts in times.items():
                log(f"bf16 {name:<14} seconds per pass: {', '.join(f'{t:.1f}' for t in ts)}; "
                    f"best {k * cap / min(ts):.0f} generated tokens/s (an upper bound: a row ending early counts)")
            log(f"bf16 langmix vs plain generate (best of 3 each): {min(times['plain']) / min(times['langmix']):.2f}x")
            one = evals[:4]
            _, t1 = timed(lambda: plain_generate(model, tok, one, cap, 1))
            short = sorted(subset, key=lambda e: len(str(e.messages)))[:batch]
            _, t64 = timed(lambda: plain_generate(model, tok, short, cap, batch))
            log(f"plain generate, seconds per decoding step: batch 1 {t1 / (4 * cap) * 1e3:.1f} ms, "
                f"batch {batch} {t64 / cap * 1e3:.1f} ms (the {batch} shortest prompts)")
        model = None  # the GPU memory goes before the next dtype
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
