"""The tiny model's tokenizer, pretraining corpus knobs and cache key."""

import importlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from langmix import models, tiny_model
from langmix.config import TinyModelConfig
from langmix.data import synth
from langmix.languages import MGSM_LANGUAGES


def _pieces(text: str) -> list[str]:
    return [p for p, _ in tiny_model.pre_tokenizer().pre_tokenize_str(text)]


@pytest.fixture(scope="module")
def tokenizer():
    corpus = synth.pretraining_corpus({lang: 1.0 for lang in MGSM_LANGUAGES}, 60, seed=0, parallel_share=0.2)
    return tiny_model.train_tokenizer(corpus, 1200)


def test_digits_are_single_tokens(tokenizer):
    for text in ["The answer is 472.", "小明有19个硬币。", '{"amount": 2025}', "答案是38。", "ana 1234 "]:
        digits = [t for t in tokenizer.tokenize(text) if any(c.isdigit() for c in t)]
        assert digits and all(len(t) == 1 for t in digits), (text, tokenizer.tokenize(text))
    # a number is spelled with the same tokens after a space, a Han character or a bracket
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in ("x 38", "有38", "[38")]
    assert ids[0][-2:] == ids[1][-2:] == ids[2][-2:]


def test_han_characters_are_isolated_and_marks_stay_with_their_letters():
    assert len(_pieces("小明有苹果")) == 5
    # Thai, Bengali and Telugu words keep their vowel signs (marks, not letters) inside one pre-token
    for word in ["ตอนนี้", "তাপমাত্রা", "ఉష్ణోగ్రత"]:
        assert len(_pieces(word)) == 1, word
    assert len(_pieces("ตอนนี้ที่")) == 1  # no spaces in Thai: the run is one pre-token, BPE learns its pieces
    assert _pieces("Hello world") == ["Hello", "Ġworld"]  # words keep GPT-2's leading space


@pytest.mark.parametrize("lang", MGSM_LANGUAGES)
def test_tokenizer_round_trips_every_language(tokenizer, lang):
    for item in synth.make_items("math", "eval", 3, 0) + synth.make_items("api", "eval", 5, 0):
        ex = synth.to_example(item, lang)
        for message in ex.messages:
            ids = tokenizer(message["content"], add_special_tokens=False)["input_ids"]
            assert tokenizer.decode(ids) == message["content"]


def test_config_fields_are_documented_and_shares_checked():
    for name, field in TinyModelConfig.model_fields.items():
        assert field.description, name
    with pytest.raises(ValidationError, match="at most 1"):
        TinyModelConfig(parallel_share=0.7, code_switch_share=0.5)
    with pytest.raises(ValidationError):
        TinyModelConfig(language_shares={"en": 1.0, "xx": 0.5})


def test_cache_key_follows_the_multilinguality_knobs():
    base = tiny_model.tiny_model_key(TinyModelConfig())
    assert tiny_model.tiny_model_key(TinyModelConfig()) == base
    assert tiny_model.tiny_model_key(TinyModelConfig(parallel_share=0.3)) != base
    assert tiny_model.tiny_model_key(TinyModelConfig(code_switch_share=0.2)) != base
    shares = dict(TinyModelConfig().language_shares, sw=0.3)
    assert tiny_model.tiny_model_key(TinyModelConfig(language_shares=shares)) != base


@pytest.mark.parametrize("module", ["synth", "synth_content", "synth_items"])
def test_cache_key_follows_every_module_of_the_synthetic_world(monkeypatch, module):
    """The world's code is split over modules: an edit to any of them (what pretraining reads) is another model."""
    base = tiny_model.tiny_model_key(TinyModelConfig())
    edited, real = Path(importlib.import_module(f"langmix.data.{module}").__file__), Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: real(path) + (b"# edited\n" if path == edited else b""))
    assert tiny_model.tiny_model_key(TinyModelConfig()) != base


def test_the_world_code_is_every_synth_module():
    assert sorted(synth.CODE_FILES) == sorted(Path(synth.__file__).parent.glob("synth*.py"))


def test_pretrained_tiny_model_loads_and_generates(tiny_model_cfg, tiny_model_path):
    import json
    from pathlib import Path

    import torch

    meta = json.loads((Path(tiny_model_path) / "langmix_tiny.json").read_text())
    assert meta["config"]["parallel_share"] == tiny_model_cfg.tiny.parallel_share
    tok = models.load_tokenizer(tiny_model_cfg, tiny_model_path)
    model = models.load_model(tiny_model_cfg, tiny_model_path)
    ex = synth.to_example(synth.make_items("api", "eval", 1, 0)[0], "zh")
    prompt = tok.apply_chat_template(ex.messages[:-1], add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert ids["input_ids"].shape[1] < model.config.max_position_embeddings


def test_packing_keeps_documents_whole(tokenizer):
    corpus = synth.pretraining_corpus({"en": 1.0, "ja": 0.5}, 40, seed=0)
    data = tiny_model._packed_batches(tokenizer, corpus, 256, seed=0)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    n_docs = sum(len(d) for d in corpus.values())
    assert int((data == eos).sum()) == n_docs  # every document, each once
    for row in data.tolist():
        while row[-1] == pad:  # the padded tail
            row.pop()
        assert row[-1] == eos and pad not in row  # a row ends where a document ends


def test_parameter_count_is_the_tiny_models_exact_size(tiny_model_cfg, tiny_model_path):
    """The count the report and the capacity analysis use equals the built model's (tied embeddings counted once)."""
    from langmix.models import load_model, parameter_count

    model = load_model(tiny_model_cfg, tiny_model_path)
    assert parameter_count(tiny_model_cfg) == sum(p.numel() for p in model.parameters())


def test_reused_base_model_is_a_fresh_copy_and_follows_the_files(tiny_model_cfg, tiny_model_path, tmp_path):
    """`load_model(..., reuse=True)` hands out copies of the model in memory: equal to what the disk holds, never
    the same object (a run that trains or merges into it leaves the next run's base untouched), and reread when
    the directory's files change."""
    import shutil

    import torch

    first = models.load_model(tiny_model_cfg, tiny_model_path, reuse=True)
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)  # what training does to the copy it got
    second = models.load_model(tiny_model_cfg, tiny_model_path, reuse=True)
    from_disk = models.load_model(tiny_model_cfg, tiny_model_path)
    assert second is not first
    for (name, a), (_, b) in zip(second.state_dict().items(), from_disk.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)

    moved = tmp_path / "model"
    shutil.copytree(tiny_model_path, moved)
    models.load_model(tiny_model_cfg, str(moved), reuse=True)
    changed = models.load_model(tiny_model_cfg, str(moved))
    with torch.no_grad():
        changed.model.norm.weight.fill_(0.5)
    changed.save_pretrained(moved)  # new weights in the same directory: the kept copy must not be handed out
    again = models.load_model(tiny_model_cfg, str(moved), reuse=True)
    torch.testing.assert_close(again.model.norm.weight, torch.full_like(again.model.norm.weight, 0.5))
