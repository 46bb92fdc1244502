"""Tokenizer work done once: the fingerprint memo, cached prompt ids and token counts, tokenizer reuse."""

import shutil

import pytest
from tokenizers import normalizers

from langmix import tokenization
from langmix.models import load_tokenizer
from langmix.data.synth import make_items, to_example
from langmix.languages import MGSM_LANGUAGES
from langmix.tokenization import (chat_prompts_cached, count_tokens_cached, encode, encode_cached,
                                  tokenizer_fingerprint)

TEXTS = ["How many apples?", "¿Cuántas manzanas?", "小明有19个硬币。", "How many apples?", "", "ตอนนี้ที่"]


def test_cached_ids_and_counts_equal_the_tokenizers(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    expected = tok(TEXTS, add_special_tokens=False)["input_ids"]
    first = encode_cached(tok, TEXTS)
    assert first == [tuple(ids) for ids in expected]
    again = encode_cached(tok, list(reversed(TEXTS)))
    assert again == [tuple(ids) for ids in reversed(expected)]
    assert again[-1] is first[0] and isinstance(first[0], tuple)  # from the cache, and immutable
    assert count_tokens_cached(tok, TEXTS) == [len(ids) for ids in expected]


def test_fingerprint_follows_changes_to_the_tokenizer(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    before = tokenizer_fingerprint(tok)
    assert before == tokenization._compute_fingerprint(tok)
    tok.chat_template = "{{ messages[0]['content'] }}"
    after = tokenizer_fingerprint(tok)
    assert after != before and after == tokenization._compute_fingerprint(tok)
    tok.add_tokens(["<new-token>"])  # changes ids: a new fingerprint, and cached ids are not reused
    assert tokenizer_fingerprint(tok) not in (before, after)
    assert list(encode_cached(tok, ["a <new-token>"])[0]) == tok("a <new-token>", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("change", ["normalizer", "special flag", "split special tokens"])
def test_changes_that_keep_the_vocabulary_size_still_change_the_fingerprint(tiny_model_cfg, tiny_model_path,
                                                                             change):
    shared = load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True)
    text = "<|user|> How many apples? aintenant"
    encode_cached(shared, [text])
    before = tokenizer_fingerprint(shared)
    if change == "normalizer":
        shared.backend_tokenizer.normalizer = normalizers.Lowercase()
    elif change == "special flag":  # an entry already in the vocabulary becomes a special token: same size
        word = next(w for w in shared.get_vocab() if w.isalpha() and len(w) > 3)
        text = f"x{word}y {word}"
        encode_cached(shared, [text])
        before = tokenizer_fingerprint(shared)
        shared.add_tokens([word], special_tokens=True)
    else:
        shared.split_special_tokens = True
    assert tokenizer_fingerprint(shared) != before
    assert list(encode_cached(shared, [text])[0]) == shared(text, add_special_tokens=False)["input_ids"]
    assert load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True) is not shared  # read again


def test_reused_tokenizer_is_reread_once_changed_and_shared_by_identical_copies(tiny_model_cfg, tiny_model_path,
                                                                              tmp_path):
    first = load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True)
    assert load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True) is first
    assert load_tokenizer(tiny_model_cfg, tiny_model_path) is not first  # reuse is asked for, never imposed
    template = first.chat_template
    first.chat_template = "{{ messages[0]['content'] }}"  # a caller changed it: the next one is read again
    second = load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True)
    assert second is not first and second.chat_template == template
    # two fine-tuned copies of one base save the same tokenizer files: one tokenizer serves both
    for name in ("run-a", "run-b"):
        second.save_pretrained(tmp_path / name)
        for other in ("model.safetensors", "trainer_state.json", "README.md"):  # weights and logs differ
            (tmp_path / name / other).write_bytes(name.encode())
    a = load_tokenizer(tiny_model_cfg, str(tmp_path / "run-a"), reuse=True)
    assert load_tokenizer(tiny_model_cfg, str(tmp_path / "run-b"), reuse=True) is a
    extra = tmp_path / "run-b" / "additional_chat_templates"  # a file in a subfolder is part of the tokenizer
    extra.mkdir()
    (extra / "tool_use.jinja").write_text("TOOLS")
    with_templates = load_tokenizer(tiny_model_cfg, str(tmp_path / "run-b"), reuse=True)
    assert with_templates is not a
    assert load_tokenizer(tiny_model_cfg, str(tmp_path / "run-b"), reuse=True) is with_templates
    vocab = tmp_path / "run-b" / "tokenizer.json"
    vocab.write_text(vocab.read_text().replace('"<|pad|>"', '"<|padding|>"'))  # another tokenizer: read anew
    b = load_tokenizer(tiny_model_cfg, str(tmp_path / "run-b"), reuse=True)
    assert b is not a and "<|padding|>" in b.get_vocab()
    shutil.rmtree(tmp_path)


def test_direct_encoding_equals_transformers_in_every_language(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    texts = [tok.apply_chat_template(ex.messages, tokenize=False) for task in ("math", "api")
             for item in make_items(task, "eval", 3, 0) for lang in MGSM_LANGUAGES for ex in [to_example(item, lang)]]
    texts += ["<|user|> a special token inside", "  spaces\n\tand tabs ", ""]
    assert encode(tok, texts) == tok(texts, add_special_tokens=False)["input_ids"]
    tok(texts[:2], padding=True, truncation=True, max_length=8)  # leaves padding and truncation set on the backend
    assert encode(tok, texts) == tok(texts, add_special_tokens=False)["input_ids"]


def test_cached_chat_prompts_equal_the_template_and_follow_its_changes(tiny_model_cfg, tiny_model_path, monkeypatch):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=False)
    conversations = [[{"role": "system", "content": "Tools: []"}, {"role": "user", "content": text}]
                     for text in TEXTS] + [[{"role": "user", "content": "How many apples?"}]]
    expected = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    rendered: list[int] = []
    real = type(tok).apply_chat_template
    monkeypatch.setattr(type(tok), "apply_chat_template",
                        lambda self, *a, **k: rendered.append(1) or real(self, *a, **k))
    assert chat_prompts_cached(tok, conversations) == expected
    assert len(rendered) == len(TEXTS)  # the repeated conversation rendered once (the last differs: no system turn)
    assert chat_prompts_cached(tok, conversations[::-1]) == expected[::-1] and len(rendered) == len(TEXTS)
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    changed = chat_prompts_cached(tok, conversations[:1])  # another template: rendered anew
    assert changed == ["[system] Tools: []\n[user] How many apples?\n"] and len(rendered) == len(TEXTS) + 1
    listed = [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]]  # not a string: rendered each time
    assert chat_prompts_cached(tok, listed) == [real(tok, listed[0], tokenize=False, add_generation_prompt=True)]
    tok.chat_template = "{{ unk_token }}|{% for m in messages %}{{ m['content'] }}{% endfor %}"
    first = chat_prompts_cached(tok, [[{"role": "user", "content": "hi"}]])
    tok.unk_token = tok.eos_token  # a special token the fingerprint does not hash, read by the template
    assert chat_prompts_cached(tok, [[{"role": "user", "content": "hi"}]]) == [f"{tok.eos_token}|hi"] != first
    values = [[{"role": "user", "content": v}] for v in (True, 1.0)]  # equal as keys, rendered differently
    assert chat_prompts_cached(tok, values) == [f"{tok.eos_token}|True", f"{tok.eos_token}|1.0"]
