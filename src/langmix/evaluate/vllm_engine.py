"""Optional generation through vLLM (`evaluation.engine: vllm`): never required, used only where `vllm` is
installed (it needs a GPU build). A study evaluates many fine-tuned models of one base: LoRA adapters run on one
engine of the base model (multi-LoRA, the base loaded once per process); a fully fine-tuned model gets its own
engine, and the previous one is released first (one engine holds most of the GPU's memory).

Decoding follows langmix's own `generate`: the same rendered and tokenised prompts (token ids go to vLLM, so the
chat template and special tokens are exactly the Hugging Face path's), greedy, each task's max-token cap, ending at
the tokenizer's end-of-turn token only (`ignore_eos` with that token as the stop token: the model's
generation_config EOS ids, which vLLM would add, do not end rows that `generate` continues), the end-of-turn token
kept in the output ids and decoded the same way. Outputs can still differ from the Hugging Face path where the two
engines' kernels round differently (bf16 near-ties); the engine is part of the evaluation key.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from langmix.errors import UserInputError
from langmix.records import Example
from langmix.timing import compute
from langmix.tokenization import decode_all, encode_cached

log = logging.getLogger(__name__)

_ENGINE: dict[str, Any] = {}  # "key" -> (model path, dtype, LoRA rank, engine args); "llm" -> the engine
_LORA_IDS: dict[str, int] = {}  # adapter directory -> vLLM's integer id for it (stable within the process)


def _vllm():
    try:
        import vllm
    except ImportError as exc:
        raise UserInputError("evaluation.engine is 'vllm' but vLLM is not installed (`pip install vllm`, a CUDA "
                             "build); use engine 'hf' (the default) on this machine") from exc
    return vllm


class VllmModel:
    """What `evaluate` generates with when the engine is vLLM: an engine and the LoRA adapter (if any) to apply."""

    def __init__(self, llm, lora_request=None, name: str = ""):
        self.llm, self.lora_request, self.name = llm, lora_request, name

    @property
    def context_length(self) -> int | None:
        """The engine's `max_model_len`: the most positions a prompt and its answer take together."""
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except (AttributeError, TypeError, ValueError):
            return None

    def generate(self, tokenizer, examples: list[Example], max_new_tokens: int | Sequence[int], batch_size: int,
                 progress: Callable[[int], None] | None = None, stop: Sequence[str] | None = None) -> list[str]:
        """Greedy completions in input order, as `langmix.evaluate.generate.generate` returns them: one cap or one
        per example (an example whose cap is 0 gets "" without a request, as there)."""
        from langmix.evaluate.generate import render_prompts

        params_cls = _vllm().SamplingParams
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

        def params(cap: int):
            return params_cls(temperature=0.0, max_tokens=cap, stop=list(stop) if stop else None,
                              stop_token_ids=eos, ignore_eos=bool(eos), include_stop_str_in_output=True,
                              skip_special_tokens=True)

        ids = encode_cached(tokenizer, render_prompts(tokenizer, examples))
        caps = [max_new_tokens] * len(ids) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        live = [i for i in range(len(ids)) if caps[i] > 0]
        if progress and len(live) < len(ids):
            progress(len(ids) - len(live))
        chunk = max(4 * batch_size, 256)  # vLLM schedules its own batches; chunks only pace the progress bar
        rows: list[list[int]] = [[] for _ in ids]
        for start in range(0, len(live), chunk):
            part = live[start:start + chunk]
            sampling = (params(caps[part[0]]) if len({caps[i] for i in part}) == 1
                        else [params(caps[i]) for i in part])  # one for all where the caps agree, as before
            with compute("generate"):
                outs = self.llm.generate([{"prompt_token_ids": list(ids[i])} for i in part], sampling,
                                         lora_request=self.lora_request, use_tqdm=False)
            for i, o in zip(part, outs):
                rows[i] = list(o.outputs[0].token_ids)
            if progress:
                progress(len(part))
        return decode_all(tokenizer, rows)


def _engine(path: str, tokenizer_path: str, dtype: str, lora_rank: int, engine_args: dict[str, Any]):
    """The process's engine for `path` (and LoRA rank), built once; another one is released first."""
    key = (path, tokenizer_path, dtype, lora_rank, tuple(sorted((k, repr(v)) for k, v in engine_args.items())))
    if _ENGINE.get("key") == key:
        return _ENGINE["llm"]
    release()
    vllm = _vllm()
    lora = {"enable_lora": True, "max_lora_rank": lora_rank, "max_loras": 1} if lora_rank else {}
    log.info("starting a vLLM engine for %s%s", path, f" (LoRA rank {lora_rank})" if lora_rank else "")
    # the tokenizer only detokenises for stop strings: prompts go in as langmix's own token ids
    args = {"model": path, "tokenizer": tokenizer_path, "dtype": dtype, "seed": 0, "trust_remote_code": False,
            "generation_config": "vllm", **lora, **engine_args}
    llm = vllm.LLM(**args)
    _ENGINE.update(key=key, llm=llm)
    return llm


def release() -> None:
    """Drop the process's engine and free its GPU memory (before another engine starts)."""
    if _ENGINE.pop("llm", None) is not None:
        _ENGINE.pop("key", None)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is a dependency
            pass


def vllm_model(base_path: str, tokenizer_path: str, dtype: str, trained_dir: Path | None,
               engine_args: dict[str, Any], trust_remote_code: bool = False) -> VllmModel:
    """A base model, a full fine-tune (`trained_dir` holds its weights) or a LoRA adapter (`trained_dir` holds
    adapter_config.json: applied to the base model's engine, which stays loaded for the next adapter)."""
    if trust_remote_code:
        engine_args = {**engine_args, "trust_remote_code": True}
    if trained_dir is not None and (Path(trained_dir) / "adapter_config.json").exists():
        import json

        rank = int(json.loads((Path(trained_dir) / "adapter_config.json").read_text()).get("r", 16))
        rank = next(r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank)  # the ranks vLLM accepts
        llm = _engine(base_path, tokenizer_path, dtype, rank, engine_args)
        adapter = str(Path(trained_dir).resolve())
        lora_id = _LORA_IDS.setdefault(adapter, len(_LORA_IDS) + 1)
        request = _vllm_lora_request()(f"adapter-{lora_id}", lora_id, adapter)
        return VllmModel(llm, request, adapter)
    path = str(trained_dir) if trained_dir is not None else base_path
    return VllmModel(_engine(path, tokenizer_path, dtype, 0, engine_args), None, path)


def _vllm_lora_request():
    _vllm()
    from vllm.lora.request import LoRARequest

    return LoRARequest
