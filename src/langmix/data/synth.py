"""The embedded synthetic world: parallel math and API-calling items, and English-centric pretraining text.

Items are language-neutral (numbers, operations, function calls) and are rendered into each language from the
per-language template files in `templates/` (data, not code). Everything is deterministic given a seed.
Source ids carry the split (`math-train-17`), so evaluation items can never be mistaken for training items.

This module holds what the world gives a study (`SynthWorld`'s train pool and eval set, the pretraining corpus);
the content tables, tools and templates are in `synth_content`, the items and their rendering in `synth_items`,
and their names are re-exported here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langmix.data import synth_content, synth_items
from langmix.data.synth_content import (API_SYSTEM, CITIES, CURRENCIES, IRRELEVANT_SLOTS, OPS,  # noqa: F401
                                        PEOPLE, ROOMS, TEMPLATE_DIR, TOOLS, TemplateError, load_templates,
                                        template_languages)
from langmix.data.synth_items import (IRRELEVANCE_SHARE, MATH_SENTENCES, ApiItem, MathItem, _bind,  # noqa: F401
                                      _math_item, answer_phrase, content_key, make_items, math_sentences,
                                      render_api, render_api_answer, render_math, to_example)
from langmix.records import Example

# The world's code, for the keys of what is built from it (the tiny model's): this module and those it is split into.
CODE_FILES: tuple[Path, ...] = (Path(__file__), Path(synth_content.__file__), Path(synth_items.__file__))


@dataclass
class SynthWorld:
    """Train pool and eval set for the study's tasks, generated once and shared by every run."""

    seed: int
    train_pool: int
    eval_items: int
    _cache: dict = field(default_factory=dict)

    def eval_source(self, task: str) -> list[MathItem | ApiItem]:
        key = ("eval", task)
        if key not in self._cache:
            self._cache[key] = make_items(task, "eval", self.eval_items, self.seed)
        return self._cache[key]

    def train_source(self, task: str) -> list[MathItem | ApiItem]:
        key = ("train", task)
        if key not in self._cache:
            held = {content_key(i) for i in self.eval_source(task)}
            self._cache[key] = make_items(task, "train", self.train_pool, self.seed, exclude=held)
        return self._cache[key]

    def eval_examples(self, task: str, languages: list[str]) -> list[Example]:
        return [to_example(item, lang) for lang in languages for item in self.eval_source(task)]


# What a pretraining document is about: worked math problems, tool requests with their calls, arithmetic (equations
# over the math items' number ranges, the same in every language: what web text gives a base model) and everyday text.
PRETRAIN_MIX = {"math": 0.45, "api": 0.4, "arithmetic": 0.0, "text": 0.15}
ARITHMETIC_PER_DOC = 8


def _math_doc(item: MathItem, lang: str) -> str:
    return " ".join(render_math(item, lang))


def _api_doc(item: ApiItem, lang: str) -> str:
    return render_api(item, lang) + " " + render_api_answer(item, lang)


def _arithmetic_doc(rng: random.Random) -> str:
    equations: list[str] = []
    while len(equations) < ARITHMETIC_PER_DOC:
        item = _math_item(rng, "")
        equations += [f"{x} {OPS[op]} {y} = {z}." for op, x, y, z in item.values()]
    return " ".join(equations[:ARITHMETIC_PER_DOC])


def _text_doc(rng: random.Random, lang: str) -> str:
    filler = load_templates(lang)["pretrain"]
    return " ".join(rng.sample(filler, k=min(3, len(filler))))


def _code_switched(rng: random.Random, kind: str, item: Any, lang: str, pivot: str) -> str:
    """Sentence-level code-switching between `lang` and `pivot` (the templates are parallel sentence by sentence)."""
    if kind == "math":
        a, b = math_sentences(item, lang), math_sentences(item, pivot)
        return " ".join(rng.choice(pair) for part in (0, 1) for pair in zip(a[part], b[part]))
    if kind == "text":
        mine, other = load_templates(lang)["pretrain"], load_templates(pivot)["pretrain"]
        picks = rng.sample(range(min(len(mine), len(other))), k=min(3, len(mine), len(other)))
        return " ".join(rng.choice((mine[i], other[i])) for i in picks)
    # a tool request is one sentence: the request in one language, the reply in the other
    first, second = rng.sample([lang, pivot], 2)
    return render_api(item, first) + " " + render_api_answer(item, second)


def pretraining_corpus(shares: dict[str, float], items_for_largest: int, seed: int,
                       exclude: dict[str, set] | None = None, *, parallel_share: float = 0.0,
                       code_switch_share: float = 0.0, pivot: str = "en") -> dict[str, list[str]]:
    """Unlabeled documents per language with English-centric proportions.

    Each document is a math problem with its worked solution, a tool request followed by its reply (the JSON call,
    or a refusal for a request no tool serves), a run of equations, or everyday sentences (what a base model has
    seen: content, but no chat format), in the proportions of `PRETRAIN_MIX`. The number of documents per language
    follows `shares` (relative to the largest), so the pretrained model knows languages unevenly.

    Of each non-pivot language's documents, a share `parallel_share` are parallel documents (the same content in
    `pivot` and in the language, in random order, separated by a newline) and a share `code_switch_share` are
    code-switched (each sentence in the language or in `pivot` at random); the rest are monolingual. These shares
    are the base model's cross-lingual alignment signal: at 0 the languages share only numbers, names and JSON.
    Items equal to evaluation items (`exclude[task]`) never appear.
    """
    if not 0 <= parallel_share <= 1 or not 0 <= code_switch_share <= 1 or parallel_share + code_switch_share > 1:
        raise ValueError("parallel_share and code_switch_share must be in [0, 1] and sum to at most 1")
    exclude = exclude or {}
    top = max(shares.values()) or 1.0
    corpus: dict[str, list[str]] = {}
    for lang, share in shares.items():
        n = int(round(items_for_largest * share / top))
        rng = random.Random(f"pretrain/{lang}/{seed}")
        n_math, n_api = int(n * PRETRAIN_MIX["math"]), int(n * PRETRAIN_MIX["api"])
        sources = [("math", m) for m in make_items("math", f"pretrain-{lang}", n_math, seed, exclude.get("math"))]
        sources += [("api", a) for a in make_items("api", f"pretrain-{lang}", n_api, seed, exclude.get("api"))]
        sources += [("arithmetic", None)] * int(n * PRETRAIN_MIX["arithmetic"])
        sources += [("text", None)] * (n - len(sources))
        bilingual = lang != pivot and pivot in shares
        docs = []
        for kind, item in sources:
            r = rng.random()
            if kind == "arithmetic":  # language-neutral
                docs.append(_arithmetic_doc(rng))
            elif bilingual and r < parallel_share:
                pair = [_monolingual(rng, kind, item, lang), _monolingual(rng, kind, item, pivot)]
                if kind == "text":  # the same sentences in both languages
                    picks = rng.sample(range(len(load_templates(lang)["pretrain"])), k=3)
                    pair = [" ".join(load_templates(x)["pretrain"][i] for i in picks) for x in (lang, pivot)]
                rng.shuffle(pair)
                docs.append("\n".join(pair))
            elif bilingual and r < parallel_share + code_switch_share:
                docs.append(_code_switched(rng, kind, item, lang, pivot))
            else:
                docs.append(_monolingual(rng, kind, item, lang))
        rng.shuffle(docs)
        corpus[lang] = docs
    return corpus


def _monolingual(rng: random.Random, kind: str, item: Any, lang: str) -> str:
    return _math_doc(item, lang) if kind == "math" else _api_doc(item, lang) if kind == "api" else _text_doc(rng, lang)
