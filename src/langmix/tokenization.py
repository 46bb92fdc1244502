"""What a study asks of a tokenizer many times over, done once: its fingerprint, the evaluation prompts its chat
template renders and their token ids, the token counts of mixture texts.

A study tokenises the same evaluation prompts for every run of a model (each run's tokenizer is the base's) and
counts the tokens of the same rendered examples in mixture after mixture. Both are cached here by the tokenizer's
fingerprint (vocabulary, merges, normaliser, special tokens, chat template) and the text, so a cached answer is
always the one the tokenizer would give. The fingerprint itself (a hash of the whole tokenizer: 0.6 s for
Gemma-3's 262k vocabulary) is remembered per tokenizer object while `tokenizer_state` holds.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

TOKENIZED_VERSION = b"langmix-tokenized-v1"

# Bounds: ids are kept for up to this many tokens in all (a Python int list costs ~36 bytes a token), counts for up
# to this many texts; past a bound, the oldest tokenizer's entries go, then the store starts afresh. Rendered chat
# prompts: up to this many per tokenizer, for at most 8 tokenizers.
MAX_CACHED_TOKENS = 4_000_000
MAX_CACHED_COUNTS = 1_000_000
MAX_CACHED_PROMPTS = 200_000

_FINGERPRINTS: "weakref.WeakKeyDictionary[Any, tuple[tuple, str]]" = weakref.WeakKeyDictionary()
_IDS: dict[str, dict[str, tuple[int, ...]]] = {}
_COUNTS: dict[str, dict[str, int]] = {}
_PROMPTS: dict[str, dict[tuple, str]] = {}


def tokenizer_state(tokenizer) -> tuple:
    """The settings langmix, TRL or a user change on a loaded tokenizer (chat template, special tokens, added
    tokens and their flags, padding side, the backend's normaliser, pre-tokeniser, post-processor and decoder, ...):
    a tokenizer whose state is unchanged is still the tokenizer that was loaded (4 ms for Gemma-3's 6,384 added
    tokens). Replacing the backend's vocabulary in place is not tracked."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pipeline = () if backend is None else (
        str(backend.normalizer), str(backend.pre_tokenizer), str(backend.post_processor), str(backend.decoder),
        tuple((i, t.content, t.special, t.single_word, t.lstrip, t.rstrip, t.normalized)
              for i, t in sorted(backend.get_added_tokens_decoder().items())))
    added = tuple((i, repr(t)) for i, t in sorted(getattr(tokenizer, "added_tokens_decoder", {}).items())) \
        if backend is None else ()
    return (type(tokenizer).__qualname__, tokenizer.chat_template, tokenizer.eos_token, tokenizer.pad_token,
            tokenizer.bos_token, tokenizer.unk_token, tokenizer.padding_side, tokenizer.truncation_side,
            len(tokenizer), tokenizer.model_max_length, getattr(tokenizer, "add_bos_token", None),
            getattr(tokenizer, "add_eos_token", None), getattr(tokenizer, "clean_up_tokenization_spaces", None),
            getattr(tokenizer, "split_special_tokens", None), pipeline, added)


def _compute_fingerprint(tokenizer) -> str:
    h = hashlib.sha256(TOKENIZED_VERSION)
    h.update(f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}".encode())
    h.update(repr(getattr(tokenizer, "split_special_tokens", None)).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:  # a slow tokenizer: its vocabulary and its options (lower-casing, ...) stand in
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
        h.update(json.dumps(getattr(tokenizer, "init_kwargs", {}), sort_keys=True, default=str).encode())
        h.update(repr(tokenizer_state(tokenizer)).encode())
    h.update(str(tokenizer.chat_template).encode())
    h.update(json.dumps([tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token,
                         getattr(tokenizer, "add_bos_token", None)]).encode())
    return h.hexdigest()[:16]


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything in the tokenizer that changes token ids or masks: vocabulary, merges, normaliser,
    special tokens and chat template. Computed once per tokenizer object while its `tokenizer_state` holds."""
    state = tokenizer_state(tokenizer)
    try:
        known = _FINGERPRINTS.get(tokenizer)
    except TypeError:  # an object that cannot be weakly referenced: no memo
        return _compute_fingerprint(tokenizer)
    if known is not None and known[0] == state:
        return known[1]
    fingerprint = _compute_fingerprint(tokenizer)
    _FINGERPRINTS[tokenizer] = (state, fingerprint)
    return fingerprint


def _store(stores: dict[str, dict], fingerprint: str) -> dict:
    store = stores.pop(fingerprint, None)
    stores[fingerprint] = store if store is not None else {}  # most recently used last
    return stores[fingerprint]


def _own_backend(tokenizer, methods: tuple[str, ...]):
    """The Rust tokenizer behind `tokenizer` when the class keeps transformers' own `methods` (so calling the
    backend directly is all those methods would do), else None."""
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    cls, backend = type(tokenizer), getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(tokenizer, TokenizersBackend) and backend is not None and all(
            getattr(cls, name) is getattr(TokenizersBackend, name) for name in methods):
        return backend
    return None


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """`tokenizer(texts, add_special_tokens=False)["input_ids"]`, as one call into the Rust tokenizer where that is
    all transformers does (a fast tokenizer whose class keeps transformers' own encoding path, no truncation or
    padding set on the backend): transformers converts each encoding to Python lists and dicts, which cost more
    than the encoding for prompts (measured: 0.16 s vs 0.10 s for 1,100 evaluation prompts)."""
    backend = _own_backend(tokenizer, ("__call__", "_encode_plus"))
    if (backend is not None and backend.truncation is None and backend.padding is None
            and backend.encode_special_tokens == bool(tokenizer.split_special_tokens)):
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def decode_all(tokenizer, rows: list[list[int]]) -> list[str]:
    """`tokenizer.batch_decode(rows, skip_special_tokens=True)`, as one call into the Rust tokenizer where that is
    all transformers' decode does (a fast tokenizer whose class keeps the base decode, no clean-up of spaces):
    transformers decodes row by row in Python."""
    backend = _own_backend(tokenizer, ("_decode", "decode", "batch_decode"))
    if backend is not None and not tokenizer.clean_up_tokenization_spaces:
        return backend.decode_batch(rows, skip_special_tokens=True)
    return tokenizer.batch_decode(rows, skip_special_tokens=True)


def _cached(stores: dict[str, dict], tokenizer, texts: list[str], convert) -> tuple[dict, list]:
    """The tokenizer's store (by fingerprint) with every distinct missing text added as `convert(ids)`, and the
    stored value of each text."""
    store = _store(stores, tokenizer_fingerprint(tokenizer))
    missing = [t for t in dict.fromkeys(texts) if t not in store]
    if missing:
        store.update(zip(missing, map(convert, encode(tokenizer, missing))))
    return store, [store[t] for t in texts]


def encode_cached(tokenizer, texts: list[str]) -> list[tuple[int, ...]]:
    """`tokenizer(texts, add_special_tokens=False)["input_ids"]` as tuples (shared with later calls, so they cannot
    be changed), each distinct text encoded once per tokenizer (fingerprint) in this process."""
    store, out = _cached(_IDS, tokenizer, texts, tuple)
    while sum(len(ids) for s in _IDS.values() for ids in s.values()) > MAX_CACHED_TOKENS and len(_IDS) > 1:
        _IDS.pop(next(iter(_IDS)))
    if sum(len(ids) for ids in store.values()) > MAX_CACHED_TOKENS:
        store.clear()
    return out


def count_tokens_cached(tokenizer, texts: list[str]) -> list[int]:
    """The token count of each text (no special tokens added), each distinct text counted once per tokenizer
    (fingerprint) in this process."""
    _, out = _cached(_COUNTS, tokenizer, texts, len)
    if sum(len(s) for s in _COUNTS.values()) > MAX_CACHED_COUNTS:
        _COUNTS.clear()
    return out


def chat_prompts_cached(tokenizer, conversations: list[list[dict[str, str]]]) -> list[str]:
    """`tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)` of each conversation,
    each distinct one rendered once per tokenizer (fingerprint: it covers the chat template and special tokens) in
    this process. Every run of a model is evaluated on the same prompts; rendering them took ~1 ms each (a jinja
    template run per prompt), 1.2 s of the quickstart. A template that reads the clock (`strftime_now`) renders the
    date of its first call. Only string-valued messages are remembered."""
    def render(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    if not all(isinstance(k, str) and isinstance(v, str) for messages in conversations for m in messages
               for k, v in m.items()):  # e.g. multimodal content (lists): rendered, not remembered
        return [render(messages) for messages in conversations]
    keys = [tuple(tuple(m.items()) for m in messages) for messages in conversations]
    # the template sees every special token (`special_tokens_map`); the fingerprint hashes eos, pad and bos only
    store = _store(_PROMPTS, tokenizer_fingerprint(tokenizer) + json.dumps(tokenizer.special_tokens_map,
                                                                           sort_keys=True, default=str))
    if len(store) + len(keys) > MAX_CACHED_PROMPTS:
        store.clear()
    while len(_PROMPTS) > 8:
        _PROMPTS.pop(next(iter(_PROMPTS)))
    for key, messages in zip(keys, conversations):
        if key not in store:
            store[key] = render(messages)
    return [store[key] for key in keys]
