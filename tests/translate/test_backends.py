"""The seq2seq and causal backends on real (tiny, local) models: their failures must be caught, not passed on."""

import torch
from transformers import MarianConfig, MarianMTModel

from langmix.models import load_tokenizer
from langmix.translate.backends import CausalBackend, Seq2SeqBackend, model_language_code
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples


def test_random_marian_garbage_is_caught(tmp_path, tiny_model_cfg, tiny_model_path, gsm_questions):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    torch.manual_seed(0)
    config = MarianConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    MarianMTModel(config).save_pretrained(tmp_path / "marian")
    tok.save_pretrained(tmp_path / "marian")
    backend = Seq2SeqBackend(str(tmp_path / "marian"), family="marian", max_new_tokens=40)
    out, qa = translate_examples(gsm_questions[:12], ["sw"], backend, TranslationCache(tmp_path / "c.sqlite"),
                                 ["en", "sw"])
    assert out == [] and qa["sw"].excluded == 12  # random weights never yield a valid translation
    assert sum(qa["sw"].reasons.values()) >= 12
    print("random Marian rejections:", dict(qa["sw"].reasons))


def test_model_language_codes():
    assert model_language_code("sw", "nllb") == "swh_Latn" and model_language_code("zh", "nllb") == "zho_Hans"
    assert model_language_code("te", "madlad") == "<2te>" and model_language_code("ja", "m2m100") == "ja"


def test_causal_backend_with_the_tiny_model(tmp_path, tiny_model_cfg, tiny_model_path, gsm_questions):
    backend = CausalBackend(tiny_model_cfg, max_new_tokens=24)
    out, qa = translate_examples(gsm_questions[:6], ["es"], backend, TranslationCache(tmp_path / "c.sqlite"),
                                 ["en", "es"], policy="flag")
    q = qa["es"]
    assert q.n == 6 and q.passed + q.flagged + q.excluded == 6  # every example accounted for
    assert len(out) == q.passed + q.flagged and all(ex.language == "es" for ex in out)
    assert all(("translation_flags" in ex.reference) for ex in out[q.passed:] if q.flagged)


def test_completion_prompt_for_base_models():
    from langmix.translate.backends import Request, completion_prompt

    prompt = completion_prompt(Request("Tom has ⟦0⟧ cats.", "en", "sw"))
    lines = prompt.splitlines()
    assert lines[-2:] == ["English: Tom has ⟦0⟧ cats.", "Swahili:"]
    assert "Swahili: Leo hali ya hewa ni nzuri na watoto wanacheza bustanini." in lines  # parallel demonstrations
