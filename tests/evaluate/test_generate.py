"""langmix's greedy decoding loop gives exactly the outputs of plain batched `model.generate`."""

import copy
from collections import Counter

import pytest
import torch

from langmix.data.synth import make_items, to_example
from langmix import timing
from langmix.evaluate import generate as generate_module
from langmix.evaluate.generate import generate, plain_generate, render_prompts
from langmix.models import load_tokenizer

LANGS = ["en", "sw", "ja", "es"]
EXAMPLES = [to_example(item, LANGS[k % len(LANGS)]) for task in ("math", "api")
            for k, item in enumerate(make_items(task, "eval", 10, 0))]


@pytest.fixture(scope="module")
def tok_model(tiny_model_cfg, tiny_model_path):
    """The tiny tokenizer and a small Llama with seeded random weights: unlike a briefly pretrained model, it
    continues different prompts differently, so the comparisons below are not trivially equal."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, max_position_embeddings=1024, initializer_range=0.3, tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None))
    return tok, model.eval()


def _frequent_token_as_eos(tok, model):
    """A tokenizer copy whose end-of-turn token is one the model emits often, so rows finish at different steps."""
    prompts = render_prompts(tok, EXAMPLES)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)[:, enc["input_ids"].shape[1]:]
    counts = Counter(out.flatten().tolist())
    counts.pop(tok.pad_token_id, None)
    counts.pop(tok.eos_token_id, None)
    rows = out.tolist()

    def finish_steps(t):  # the step at which each row would end with `t` as its end-of-turn token
        return {row.index(t) if t in row else len(row) for row in rows}

    # frequent, and ending rows at as many different steps as possible
    token = max((t for t, _ in counts.most_common(12)), key=lambda t: len(finish_steps(t)))
    tok2 = copy.deepcopy(tok)
    tok2.eos_token = tok.convert_ids_to_tokens(token)
    return tok2


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_greedy_outputs_identical_to_plain_generate(tok_model, batch_size):
    tok, model = tok_model
    want = plain_generate(model, tok, EXAMPLES, 12, batch_size)
    assert generate(model, tok, EXAMPLES, 12, batch_size) == want
    assert generate(model, tok, EXAMPLES, 12, batch_size, shared_prefix_min=32) == want


def test_rows_finishing_early_leave_the_batch_with_identical_outputs(tok_model):
    tok, model = tok_model
    tok2 = _frequent_token_as_eos(tok, model)
    want = plain_generate(model, tok2, EXAMPLES, 16, 8)
    got = generate(model, tok2, EXAMPLES, 16, 8)
    assert got == want
    lengths = [len(tok2(o, add_special_tokens=False)["input_ids"]) for o in want]
    assert min(lengths) < max(lengths)  # rows did finish at different steps


@pytest.fixture
def joins(monkeypatch):
    """Counts the rows that join a batch already decoding (continuous batching)."""
    joined = []
    original = generate_module._Batch.join

    def counting(self, other):
        joined.append(len(other.rows))
        original(self, other)

    monkeypatch.setattr(generate_module._Batch, "join", counting)
    return joined


@pytest.mark.parametrize("shared_prefix_min", [0, 16])
def test_rows_join_the_decoding_batch_as_others_finish_with_identical_outputs(tok_model, joins,
                                                                               shared_prefix_min):
    """Continuous batching: finished rows make room, the next prompts are encoded and join the running batch
    (their cache left-padded to its width); every output still equals plain batched `generate`, with per-example
    caps and rows finishing at many different steps."""
    tok, model = tok_model
    _assert_identical_with_caps(model, _frequent_token_as_eos(tok, model), EXAMPLES * 2, shared_prefix_min)
    assert len(joins) >= 3 and sum(joins) >= 8


def _assert_identical_with_caps(model, tok, examples, shared_prefix_min=0):
    """generate() with per-example caps (4 to 16 tokens) equals plain batched `generate` of each cap's examples."""
    caps = [4 + 3 * (k % 5) for k in range(len(examples))]
    got = generate(model, tok, examples, caps, 8, shared_prefix_min=shared_prefix_min, join_rows=True)
    for cap in set(caps):
        subset = [ex for ex, c in zip(examples, caps) if c == cap]
        assert [g for g, c in zip(got, caps) if c == cap] == plain_generate(model, tok, subset, cap, 8)


def test_continuous_batching_setting_reaches_generation_with_the_same_predictions(tok_model, joins):
    from langmix.config import EvalConfig
    from langmix.evaluate.run import evaluate

    tok, model = tok_model
    tok2 = _frequent_token_as_eos(tok, model)
    math = [ex for ex in EXAMPLES if ex.task == "math"] * 2
    cfg = EvalConfig(batch_size=4, max_new_tokens={"math": 16})
    static = evaluate(model, tok2, math, cfg, LANGS)
    assert not joins
    assert evaluate(model, tok2, math, cfg.model_copy(update={"continuous_batching": True}), LANGS) == static
    assert joins


def test_shared_prompt_prefix_is_encoded_once_with_identical_outputs(tok_model):
    tok, model = tok_model
    api = [ex for ex in EXAMPLES if ex.task == "api"]
    rows = tok(render_prompts(tok, api), add_special_tokens=False)["input_ids"]
    shared = next(k for k in range(min(map(len, rows))) if len({r[k] for r in rows}) > 1)
    assert shared >= 32  # the system prompt with the tool schemas
    assert generate(model, tok, api, 12, 8, shared_prefix_min=16) == plain_generate(model, tok, api, 12, 8)


def test_per_example_caps_and_stop_strings(tok_model):
    tok, model = tok_model
    full = generate(model, tok, EXAMPLES, 12, 8)
    caps = [3 if k % 2 else 12 for k in range(len(EXAMPLES))]
    capped = generate(model, tok, EXAMPLES, caps, 8)
    short = [ex for ex, cap in zip(EXAMPLES, caps) if cap == 3]
    assert [c for c, cap in zip(capped, caps) if cap == 3] == plain_generate(model, tok, short, 3, 8)
    assert [c for c, cap in zip(capped, caps) if cap == 12] == [f for f, cap in zip(full, caps) if cap == 12]
    stop = Counter(o[2:4] for o in full if len(o) >= 4).most_common(1)[0][0]
    stopped = generate(model, tok, EXAMPLES, 12, 8, stop=[stop])
    assert any(s != f for s, f in zip(stopped, full))
    for s, f in zip(stopped, full):  # cut after the token completing the stop string (its last char may be partial)
        assert s == f or (stop in s and f.startswith(s[:-1]))


def test_empty_and_progress(tok_model):
    tok, model = tok_model
    assert generate(model, tok, [], 5, 4) == []
    seen = []
    generate(model, tok, EXAMPLES[:5], 2, 2, progress=seen.append)
    assert seen == [2, 2, 1]  # k more examples finished
    seen.clear()
    tok2 = _frequent_token_as_eos(tok, model)
    inside = []  # a progress bar's or heartbeat's time must not count as model compute (study_overhead.py)
    generate(model, tok2, EXAMPLES, 16, 8, progress=lambda k: (seen.append(k), inside.append(timing.in_compute())))
    assert sum(seen) == len(EXAMPLES) and len(seen) > len(EXAMPLES) // 8
    assert inside and not any(inside)


@pytest.mark.parametrize("window", [8, 24, 1000])
def test_sliding_window_model_gives_identical_outputs(tok_model, joins, window):
    """A model with sliding-window layers (Gemma-3's pattern): where a row could outgrow the window, those cache
    layers keep their own window state (only full-attention layers get langmix's preallocated buffers) and no row
    joins a running batch; where none can, they attend as full layers and rows join. Outputs equal plain
    `generate` either way, with rows finishing early."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok, _ = tok_model
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, intermediate_size=128, max_position_embeddings=1024, sliding_window=window,
        layer_types=["sliding_attention", "full_attention"], initializer_range=0.02,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)).eval()
    tok2 = _frequent_token_as_eos(tok, model)
    want = plain_generate(model, tok2, EXAMPLES, 16, 8)
    assert generate(model, tok2, EXAMPLES, 16, 8) == want
    assert generate(model, tok2, EXAMPLES, 16, 8, join_rows=True) == want
    assert len(set(want)) > len(want) // 2  # the model continues different prompts differently
    _assert_identical_with_caps(model, tok2, EXAMPLES * 2)
    longest = max(len(r) for r in tok(render_prompts(tok, EXAMPLES))["input_ids"]) + 16
    assert (len(joins) > 0) == (window > longest)
    # a shared prefix is not encoded once where a sliding layer is kept: the padding between the prefix and a
    # shorter row's own tokens would take up window positions (HF counts the window in cache positions)
    api = [ex for ex in EXAMPLES if ex.task == "api"]
    assert generate(model, tok, api, 16, 8, shared_prefix_min=16) == plain_generate(model, tok, api, 16, 8)


def test_rows_joining_never_feed_a_finished_row_past_its_positions(tok_model):
    """GPT-2 learns absolute positions (n_positions): a finished row kept in a batch while rows that joined later
    run on would be fed positions beyond its prompt + cap, past the model's table (IndexError; a device assert
    on a GPU). With rows joining, finished rows leave at once."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok, _ = tok_model
    lengths = [len(r) for r in tok(render_prompts(tok, EXAMPLES), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(EXAMPLES)), key=lambda i: lengths[i])
    # 16 short prompts start together (2 end after 5 tokens, 14 run 60); the longest prompt (cap 1) joins with
    # one more short one (cap 60): it ends at its first token while the others run on
    picks, caps = order[:16] + [order[-1], order[0]], [5, 5] + [60] * 14 + [1, 60]
    examples = [EXAMPLES[i] for i in picks]
    need = max(lengths[i] + c for i, c in zip(picks, caps))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=4, n_positions=need + 1,
                                       initializer_range=0.3, pad_token_id=tok.pad_token_id,
                                       eos_token_id=tok.eos_token_id, bos_token_id=None)).eval()
    assert generate(model, tok, examples, caps, 16, join_rows=True) == generate(model, tok, examples, caps, 16)


def test_decode_all_equals_batch_decode(tok_model):
    """The one-call decode gives transformers' `batch_decode` text, special tokens skipped, in every language."""
    from langmix.tokenization import decode_all

    tok, _ = tok_model
    rows = [tok(ex.messages[-1]["content"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            for ex in EXAMPLES]
    assert decode_all(tok, rows) == tok.batch_decode(rows, skip_special_tokens=True)
    assert all(text and tok.eos_token not in text for text in decode_all(tok, rows))


def test_a_large_cap_reserves_kv_room_only_as_rows_need_it(tok_model, monkeypatch):
    """A cap of thousands of tokens that answers never reach reserved that many KV positions for every row."""
    tok, model = tok_model
    tok2 = _frequent_token_as_eos(tok, model)
    caches = []
    original = generate_module._growing_cache
    monkeypatch.setattr(generate_module, "_growing_cache", lambda *a: caches.append(original(*a)) or caches[-1])
    small = generate(model, tok2, EXAMPLES, 16, 8)
    big = generate(model, tok2, EXAMPLES, 16_000, 8)
    assert all(b.startswith(s[:-1]) for b, s in zip(big, small))  # (a 16-token cut may split a character)
    longest = max(len(r) for r in tok(render_prompts(tok, EXAMPLES), add_special_tokens=False)["input_ids"])
    widest = max(layer._kv[0].shape[-2] for cache in caches for layer in cache.layers if hasattr(layer, "_kv"))
    assert widest <= 2 * (longest + 257)


@pytest.mark.parametrize("joins", [False, True])
def test_no_row_runs_past_the_models_context(tok_model, caplog, joins):
    """Prompt + answer cap past the model's positions ran on without a word (RoPE extrapolates; learned positions
    or vLLM would fail). Rows that fit keep their outputs; a row that does not is cut where the context ends, or
    gets "" where its prompt fills it, and one warning names them with the limit."""
    import logging

    tok, model = tok_model
    lengths = [len(r) for r in tok(render_prompts(tok, EXAMPLES), add_special_tokens=False)["input_ids"]]
    n_ctx = sorted(lengths)[len(lengths) // 3]
    short = copy.deepcopy(model)
    short.config.max_position_embeddings = n_ctx  # rotary positions are computed on the fly: the same model
    room = [max(0, n_ctx - n) for n in lengths]
    fits = [n + 12 <= n_ctx for n in lengths]
    assert any(fits) and 0 in room and any(0 < r < 12 for r in room)
    seen: list[int] = []
    with caplog.at_level(logging.WARNING, logger="langmix.evaluate.generate"):
        got = generate(short, tok, EXAMPLES, 12, 8, progress=seen.append, join_rows=joins)
    assert sum(seen) == len(EXAMPLES)
    want = generate(model, tok, EXAMPLES, [min(12, r) for r in room], 8, join_rows=joins)  # the same, capped
    assert got == want
    assert [g for g, fit in zip(got, fits) if fit] == \
        [g for g, fit in zip(generate(model, tok, EXAMPLES, 12, 8, join_rows=joins), fits) if fit]
    assert all(g == "" for g, r in zip(got, room) if r == 0)
    over = [ex.id for ex, fit in zip(EXAMPLES, fits) if not fit]
    (record,) = [r for r in caplog.records if "context" in r.getMessage()]
    assert record.getMessage().startswith(f"{len(over)} of {len(EXAMPLES)} ") and f"context of {n_ctx} positions" \
        in record.getMessage() and over[0] in record.getMessage()
    assert f"({room.count(0)} get none: the prompt fills it)" in record.getMessage()
