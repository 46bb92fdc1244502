r"""The tiny model: a small Llama-architecture network with a byte-level BPE tokenizer, pretrained here on the
synthetic English-centric corpus, and cached by the hash of everything that determines it.

The tokenizer splits numbers into single digits (as Llama-3's and Gemma's do for arithmetic; a number is then
spelled the same way after a space, a CJK character or a bracket), isolates each Han character (Chinese and
Japanese write no spaces between words, so a merge across characters would be an arbitrary chunk; kana runs
still merge), and keeps combining marks with their letters, so Thai,
Bengali and Telugu words are not cut at every vowel sign (GPT-2's `\p{L}+` pre-tokenizer regex does that, since the
signs are marks, not letters). Words keep GPT-2's leading space: a name in a request (" Dakar") is then another
token than in the call ('"Dakar"'). Isolating whitespace would make them one token, but measured on the quickstart
it did not make the tiny model copy names and it cost math accuracy (longer sequences), so it is not done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from langmix.cache import cache_root, publish, temp_dir
from langmix.config import TinyModelConfig, config_hash
from langmix.data import synth
from langmix.timing import compute

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]

# Assistant turns sit inside {% generation %} so TRL's assistant-only loss masks everything else; the end-of-turn
# token is inside the markers, so the model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


# Bump when the recipe below changes in a way the config and the synth sources do not capture.
TINY_RECIPE = b"recipe-v4"
# Digits one per token; Han characters one per pre-token; words (kana runs included) keep their combining marks
# and, as in GPT-2, a leading space.
DIGIT = Regex(r"\p{Nd}")
HAN_CHAR = Regex(r"\p{Han}")
WORDS = Regex(r" ?[\p{L}\p{M}]+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+")


def tiny_model_key(cfg: TinyModelConfig) -> str:
    """Hash of the tiny config, the synthetic world (its code and template files) and this module's recipe."""
    h = hashlib.sha256(config_hash(cfg).encode())
    for path in [*synth.CODE_FILES, *sorted(synth.TEMPLATE_DIR.glob("*.yaml"))]:
        h.update(path.read_bytes())
    h.update(TINY_RECIPE)
    return h.hexdigest()[:12]


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(DIGIT, behavior="isolated"),
        pre_tokenizers.Split(HAN_CHAR, behavior="isolated"),
        pre_tokenizers.Split(WORDS, behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def train_tokenizer(corpus: dict[str, list[str]], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE over the corpus with the pre-tokenizer above; every language's text is seen equally often
    in the merge statistics as it is in pretraining."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # The chat scaffolding is part of what the tokenizer must encode compactly: the tool prompt opens every API
    # example, so it counts as often as the API documents do (its words then merge early, even in a small vocabulary).
    docs = [d for texts in corpus.values() for d in texts]
    extra = ([synth.API_SYSTEM] * max(1, int(len(docs) * synth.PRETRAIN_MIX["api"]))
             + [json.dumps(t) for t in synth.TOOLS])
    tok.train_from_iterator(docs + extra, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>",
                                   additional_special_tokens=SPECIAL_TOKENS[2:])
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def _packed_batches(tokenizer: PreTrainedTokenizerFast, corpus: dict[str, list[str]], seq_len: int,
                    seed: int) -> torch.Tensor:
    """All documents, shuffled and end-of-text terminated, packed whole into rows of `seq_len` tokens; a row's
    unused tail is padding (masked out of the loss). A document never straddles two rows unless it is longer than
    a row: a worked problem's solution then always sees its question, which is what the model must copy from."""
    docs = [d for texts in corpus.values() for d in texts]
    random.Random(seed).shuffle(docs)
    pad = tokenizer.pad_token_id
    rows: list[list[int]] = []
    row: list[int] = []
    for enc in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        doc = enc + [tokenizer.eos_token_id]
        pieces = [doc[i:i + seq_len] for i in range(0, len(doc), seq_len)]
        for piece in pieces:
            if len(row) + len(piece) > seq_len:
                rows.append(row + [pad] * (seq_len - len(row)))
                row = []
            row += piece
    if row:
        rows.append(row + [pad] * (seq_len - len(row)))
    return torch.tensor(rows)


def pretrain_tiny(cfg: TinyModelConfig, out_dir: Path, progress=None) -> Path:
    """Train the tokenizer and pretrain the tiny model on the synthetic corpus; save to `out_dir`."""
    torch.manual_seed(cfg.seed)
    eval_keys = {task: {synth.content_key(i) for i in synth.make_items(task, "eval", 400, 0)}
                 for task in ("math", "api")}
    corpus = synth.pretraining_corpus(cfg.language_shares, cfg.corpus_items_per_language, cfg.seed, eval_keys,
                                      parallel_share=cfg.parallel_share, code_switch_share=cfg.code_switch_share)
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    data = _packed_batches(tokenizer, corpus, cfg.pretrain_seq_len, cfg.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=0.01, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(cfg.seed)
    warm = max(1, cfg.pretrain_steps // 20)
    model.train()
    log.info("pretraining tiny model: %d params, %d sequences of %d tokens, %d steps",
             sum(p.numel() for p in model.parameters()), len(data), cfg.pretrain_seq_len, cfg.pretrain_steps)
    start = time.time()
    for step in range(cfg.pretrain_steps):
        lr = cfg.pretrain_lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / cfg.pretrain_steps))
        for group in opt.param_groups:
            group["lr"] = lr
        batch = data[torch.randint(len(data), (cfg.pretrain_batch_size,), generator=gen)]
        labels = batch.masked_fill(batch == tokenizer.pad_token_id, -100)
        with compute("pretrain"):
            loss = model(input_ids=batch, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if progress:
            progress(step + 1, cfg.pretrain_steps, loss.item())
    log.info("pretraining done in %.1fs, final loss %.3f", time.time() - start, loss.item())
    tmp = temp_dir(out_dir)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "langmix_tiny.json").write_text(json.dumps({"config": cfg.model_dump(), "final_loss": loss.item(),
                                                       "tokens": int(data.numel())}, indent=2))
    return publish(tmp, out_dir)


def ensure_tiny(cfg: TinyModelConfig, progress=None) -> Path:
    """Path of the pretrained tiny model, building it on first use."""
    path = cache_root() / "models" / f"tiny-{tiny_model_key(cfg)}"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    return pretrain_tiny(cfg, path, progress)
