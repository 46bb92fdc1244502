"""`evaluation.engine: vllm`, against a stand-in `vllm` module (vLLM itself needs a CUDA build, not installable
here): the stand-in decodes greedily with transformers under vLLM's documented semantics (`max_tokens`,
`stop_token_ids` end a row and stay in its ids, `ignore_eos`, LoRA requests naming an adapter directory), so these
tests pin langmix's side: the prompts it sends, the sampling parameters, engine reuse across adapters and the
outputs it returns, which must be the Hugging Face engine's."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest
import torch

from langmix.config import EvalConfig
from langmix.data.sources import SynthSource
from langmix.evaluate import vllm_engine
from langmix.evaluate.run import evaluate, load_for_evaluation


class FakeLLM:
    made: list["FakeLLM"] = []

    def __init__(self, **kwargs):
        from transformers import AutoModelForCausalLM

        self.kwargs = kwargs
        self.model = AutoModelForCausalLM.from_pretrained(kwargs["model"], dtype=torch.float32).eval()
        self.calls: list[tuple[list[list[int]], object, object]] = []
        self._adapters: dict[str, object] = {}
        max_len = kwargs.get("max_model_len", self.model.config.max_position_embeddings)
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=max_len))
        FakeLLM.made.append(self)

    def _model_for(self, request):
        if request is None:
            return self.model
        if request.lora_path not in self._adapters:
            import copy

            from peft import PeftModel

            self._adapters[request.lora_path] = PeftModel.from_pretrained(
                copy.deepcopy(self.model), request.lora_path).merge_and_unload().eval()
        return self._adapters[request.lora_path]

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        assert not use_tqdm  # langmix shows its own progress
        ids = [p["prompt_token_ids"] for p in prompts]
        self.calls.append((ids, params, lora_request))
        model, outs = self._model_for(lora_request), []
        per_prompt = params if isinstance(params, list) else [params] * len(ids)  # vLLM takes either
        for row, params in zip(ids, per_prompt):
            assert len(row) + params.max_tokens <= self.llm_engine.model_config.max_model_len  # vLLM refuses more
            x = torch.tensor([row])
            with torch.no_grad():
                full = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=params.max_tokens,
                                      do_sample=False, eos_token_id=params.stop_token_ids or None, pad_token_id=0)
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=tuple(full[0, len(row):].tolist()))]))
        return outs


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class FakeLoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, FakeSamplingParams
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.made = []
    vllm_engine.release()
    yield vllm
    vllm_engine.release()


def _examples(n: int = 3):
    from langmix.config import DataConfig

    return SynthSource(DataConfig(train_pool=20, eval_items=n)).eval_examples("math", ["en", "sw"])


def test_the_vllm_engine_returns_the_hf_engines_outputs(fake_vllm, tiny_model_cfg, tiny_model_path):
    examples = _examples()
    hf = EvalConfig(max_new_tokens={"math": 10}, batch_size=4)
    tok, model = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, hf)
    expected, expected_metrics = evaluate(model, tok, examples, hf, ["en", "sw"])

    on_vllm = hf.model_copy(update={"engine": "vllm", "vllm_engine_args": {"gpu_memory_utilization": 0.5}})
    tok, handle = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, on_vllm)
    advanced: list[int] = []
    got, metrics = evaluate(handle, tok, examples, on_vllm, ["en", "sw"], advanced.append)
    assert [p["output"] for p in got] == [p["output"] for p in expected]
    assert metrics == expected_metrics and sum(advanced) == len(examples)

    (llm,) = FakeLLM.made
    assert llm.kwargs["trust_remote_code"] is False and llm.kwargs["generation_config"] == "vllm"
    assert llm.kwargs["gpu_memory_utilization"] == 0.5 and "enable_lora" not in llm.kwargs
    ids, params, lora = llm.calls[0]
    from langmix.evaluate.generate import render_prompts

    assert ids == [tok(p, add_special_tokens=False)["input_ids"] for p in render_prompts(tok, examples)]
    assert (params.temperature, params.max_tokens, params.ignore_eos, params.stop_token_ids) == \
        (0.0, 10, True, [tok.eos_token_id]) and lora is None


def _adapter(tiny_model_path, out, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_path),
                          LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, p in peft.named_parameters():
        if "lora_B" in name:  # B starts at zero (a no-op adapter): make each adapter change the outputs
            torch.nn.init.normal_(p, std=0.5)
    peft.save_pretrained(out)
    return out


def test_lora_adapters_of_one_base_share_its_engine_and_match_the_merged_model(fake_vllm, tiny_model_cfg,
                                                                               tiny_model_path, tmp_path):
    examples = _examples(2)
    cfg = EvalConfig(max_new_tokens={"math": 8}, batch_size=4)
    on_vllm = cfg.model_copy(update={"engine": "vllm"})
    outputs = {}
    for seed in (1, 2):
        adapter = _adapter(tiny_model_path, tmp_path / f"adapter{seed}", seed)
        tok, merged = load_for_evaluation(tiny_model_cfg, tiny_model_path, adapter, cfg)
        expected = [p["output"] for p in evaluate(merged, tok, examples, cfg, ["en", "sw"])[0]]
        tok, handle = load_for_evaluation(tiny_model_cfg, tiny_model_path, adapter, on_vllm)
        outputs[seed] = [p["output"] for p in evaluate(handle, tok, examples, on_vllm, ["en", "sw"])[0]]
        assert outputs[seed] == expected
    assert outputs[1] != outputs[2]  # the adapters were applied, each its own
    (llm,) = FakeLLM.made  # one engine for the base, both adapters on it
    assert llm.kwargs["enable_lora"] is True and llm.kwargs["max_lora_rank"] == 8  # r=4: vLLM's smallest rank
    requests = [call[2] for call in llm.calls]
    assert [r.lora_int_id for r in requests] == [1, 2] and requests[0].lora_path.endswith("adapter1")


def test_a_fully_fine_tuned_model_gets_its_own_engine_and_the_last_one_is_released(fake_vllm, tiny_model_cfg,
                                                                                   tiny_model_path, tmp_path):
    import shutil

    full = tmp_path / "final"
    shutil.copytree(tiny_model_path, full)
    on_vllm = EvalConfig(engine="vllm")
    _, base = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, on_vllm)
    _, again = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, on_vllm)
    assert again.llm is base.llm  # the same model: the engine is kept
    _, tuned = load_for_evaluation(tiny_model_cfg, tiny_model_path, full, on_vllm)
    assert len(FakeLLM.made) == 2 and tuned.llm is not base.llm and tuned.llm.kwargs["model"] == str(full)
    assert vllm_engine._ENGINE["llm"] is tuned.llm  # only the newest engine is held


def test_the_vllm_engine_without_vllm_installed_is_one_clear_error(monkeypatch, tiny_model_cfg, tiny_model_path):
    from langmix.errors import UserInputError

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(UserInputError, match="vLLM is not installed.*engine 'hf'"):
        load_for_evaluation(tiny_model_cfg, tiny_model_path, None, EvalConfig(engine="vllm"))


def test_items_past_the_context_get_the_hf_engines_outputs_and_counts(fake_vllm, tiny_model_cfg, tiny_model_path):
    """vLLM refuses a prompt whose answer cap runs past `max_model_len`: the caps are fitted to the engine's
    context as the Hugging Face engine fits them to the model's, and the items counted the same."""
    import copy

    from langmix.evaluate.generate import render_prompts

    examples = _examples(4)
    hf = EvalConfig(max_new_tokens={"math": 10}, batch_size=4, language_id=False)
    tok, model = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, hf)
    lengths = sorted(len(r) for r in tok(render_prompts(tok, examples), add_special_tokens=False)["input_ids"])
    n_ctx = lengths[len(lengths) // 2]  # half the prompts fill it, some others fit only part of their cap
    model = copy.deepcopy(model)
    model.config.max_position_embeddings = n_ctx
    expected, expected_metrics = evaluate(model, tok, examples, hf, ["en", "sw"])
    on_vllm = hf.model_copy(update={"engine": "vllm", "vllm_engine_args": {"max_model_len": n_ctx}})
    tok, handle = load_for_evaluation(tiny_model_cfg, tiny_model_path, None, on_vllm)
    advanced: list[int] = []
    got, metrics = evaluate(handle, tok, examples, on_vllm, ["en", "sw"], advanced.append)
    assert [p["output"] for p in got] == [p["output"] for p in expected]
    assert [p["context_exceeded"] for p in got] == [p["context_exceeded"] for p in expected]
    assert any(p["context_exceeded"] for p in got) and any(p["output"] == "" for p in got)
    assert metrics == expected_metrics and sum(advanced) == len(examples)
    (llm,) = FakeLLM.made
    assert sum(len(ids) for ids, _, _ in llm.calls) == sum(1 for n in lengths if n < n_ctx)  # none for a full one
