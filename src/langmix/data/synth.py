"""The embedded synthetic world: parallel math and API-calling items, and English-centric pretraining text.

Items are language-neutral (numbers, operations, function calls) and are rendered into each language from the
per-language template files in `templates/` (data, not code). Everything is deterministic given a seed.
Source ids carry the split (`math-train-17`), so evaluation items can never be mistaken for training items.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from langmix.records import Example

TEMPLATE_DIR = Path(__file__).parent / "templates"

CITIES = ["Paris", "Tokyo", "Nairobi", "Lima", "Berlin", "Cairo", "Delhi", "Sydney", "Bangkok", "Dhaka"]
CURRENCIES = ["USD", "EUR", "JPY", "KES", "INR", "THB", "BDT", "GBP"]
OPS = {"add": "+", "sub": "-", "mul": "*"}

TOOLS: list[dict[str, Any]] = [
    {"name": "get_weather", "description": "Current weather in a city.",
     "parameters": {"type": "object", "required": ["city", "unit"], "properties": {
         "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}},
    {"name": "set_alarm", "description": "Set an alarm at a time of day.",
     "parameters": {"type": "object", "required": ["hour", "minute"], "properties": {
         "hour": {"type": "integer"}, "minute": {"type": "integer"}}}},
    {"name": "convert_currency", "description": "Convert an amount between currencies.",
     "parameters": {"type": "object", "required": ["amount", "source", "target"], "properties": {
         "amount": {"type": "number"}, "source": {"type": "string"}, "target": {"type": "string"}}}},
    {"name": "get_time", "description": "Local time in a city.",
     "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}},
]
API_SYSTEM = "Tools: " + "; ".join(
    f"{t['name']}({', '.join(t['parameters']['properties'])})" for t in TOOLS) + ". Reply with one JSON call."


class TemplateError(ValueError):
    """A template file that is missing or lacks a field."""


@lru_cache(maxsize=None)
def load_templates(lang: str) -> dict[str, Any]:
    path = TEMPLATE_DIR / f"{lang}.yaml"
    if not path.exists():
        raise TemplateError(f"no synthetic templates for language {lang!r} (expected {path})")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("math", "api", "pretrain"):
        if key not in data:
            raise TemplateError(f"{path}: missing top-level key {key!r}")
    return data


def template_languages() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


# ---------------------------------------------------------------- language-neutral items


@dataclass(frozen=True)
class MathItem:
    source_id: str
    name: int
    item: int
    start: int
    steps: tuple[tuple[str, int], ...]

    def values(self) -> list[tuple[str, int, int, int]]:
        """(op, x, y, z) for each step."""
        out, x = [], self.start
        for op, y in self.steps:
            z = x + y if op == "add" else x - y if op == "sub" else x * y
            out.append((op, x, y, z))
            x = z
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1][3]


@dataclass(frozen=True)
class ApiItem:
    source_id: str
    function: str
    arguments: tuple[tuple[str, Any], ...]
    variant: int = 0

    @property
    def call(self) -> dict[str, Any]:
        return {"name": self.function, "arguments": dict(self.arguments)}


def _math_item(rng: random.Random, source_id: str) -> MathItem:
    start = x = rng.randint(2, 20)
    steps: list[tuple[str, int]] = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["add"] + (["sub"] if x > 1 else []) + (["mul"] if x * 2 <= 60 else []))
        y = rng.randint(1, 10) if op == "add" else rng.randint(1, x - 1) if op == "sub" else rng.randint(2, 3)
        steps.append((op, y))
        x = x + y if op == "add" else x - y if op == "sub" else x * y
    return MathItem(source_id, rng.randrange(6), rng.randrange(6), start, tuple(steps))


def _api_item(rng: random.Random, source_id: str) -> ApiItem:
    fn = rng.choice([t["name"] for t in TOOLS])
    if fn == "get_weather":
        args: tuple = (("city", rng.choice(CITIES)), ("unit", rng.choice(["celsius", "fahrenheit"])))
    elif fn == "set_alarm":
        args = (("hour", rng.randint(5, 22)), ("minute", rng.choice([0, 15, 30, 45])))
    elif fn == "convert_currency":
        src, dst = rng.sample(CURRENCIES, 2)
        args = (("amount", rng.randint(2, 500)), ("source", src), ("target", dst))
    else:
        args = (("city", rng.choice(CITIES)),)
    return ApiItem(source_id, fn, args, rng.randrange(2))


def make_items(task: str, split: str, n: int, seed: int, exclude: set | None = None) -> list[MathItem | ApiItem]:
    """`n` distinct language-neutral items for a task and split; items whose content is in `exclude` are skipped."""
    if task not in ("math", "api"):
        raise ValueError(f"unknown task {task!r} (expected 'math' or 'api')")
    rng = random.Random(f"{task}/{split}/{seed}")
    seen = set(exclude or ())
    items: list[MathItem | ApiItem] = []
    attempts = 0
    while len(items) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct {task} items for split {split!r}: the item space is too small")
        sid = f"{task}-{split}-{len(items)}"
        item = _math_item(rng, sid) if task == "math" else _api_item(rng, sid)
        key = content_key(item)
        if key in seen:
            continue
        seen.add(key)
        items.append(item)
    return items


def content_key(item: MathItem | ApiItem) -> tuple:
    """What makes two items the same problem, whatever their ids (used to keep eval items out of training)."""
    if isinstance(item, MathItem):
        return ("math", item.start, item.steps, item.name, item.item)
    return ("api", item.function, item.arguments, item.variant)


# ---------------------------------------------------------------- rendering into a language


def render_math(item: MathItem, lang: str) -> tuple[str, str]:
    """(question, solution) in `lang`. The solution ends with the language's own answer phrase."""
    t = load_templates(lang)["math"]
    name, obj = t["names"][item.name], t["items"][item.item]
    question = [t["start"].format(name=name, item=obj, a=item.start)]
    solution = []
    for op, x, y, z in item.values():
        question.append(t[op].format(name=name, item=obj, b=y))
        solution.append(f"{x} {OPS[op]} {y} = {z}. " + t["state"].format(name=name, item=obj, z=z))
    question.append(t["question"].format(name=name, item=obj))
    solution.append(t["answer"].format(z=item.answer))
    return " ".join(question), " ".join(solution)


def render_api(item: ApiItem, lang: str) -> str:
    """The user request for an API item in `lang`."""
    t = load_templates(lang)["api"]
    args = dict(item.arguments)
    fill = dict(args)
    if "unit" in args:
        fill["unit"] = t["units"][args["unit"]]
    if "minute" in args:
        fill["minute"] = f"{args['minute']:02d}"
    return t[item.function][item.variant].format(**fill)


def answer_phrase(lang: str) -> str:
    """The text before the number in the language's answer line (used by strict extraction)."""
    return load_templates(lang)["math"]["answer"].split("{z}")[0].strip()


def to_example(item: MathItem | ApiItem, lang: str) -> Example:
    if isinstance(item, MathItem):
        question, solution = render_math(item, lang)
        return Example(id=f"{item.source_id}-{lang}", source_id=item.source_id, task="math", language=lang,
                       messages=[{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
                       reference={"answer": item.answer, "answer_phrase": answer_phrase(lang)})
    call = item.call
    return Example(id=f"{item.source_id}-{lang}", source_id=item.source_id, task="api", language=lang,
                   messages=[{"role": "system", "content": API_SYSTEM},
                             {"role": "user", "content": render_api(item, lang)},
                             {"role": "assistant", "content": json.dumps(call, ensure_ascii=False)}],
                   tools=TOOLS, reference={"calls": [{item.function: {k: [v] for k, v in item.arguments}}]})


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


def pretraining_corpus(shares: dict[str, float], items_for_largest: int, seed: int,
                       exclude: dict[str, set] | None = None) -> dict[str, list[str]]:
    """Unlabeled documents per language with English-centric proportions.

    Each document is a math problem with its worked solution, a tool request followed by its JSON call, or
    everyday sentences (what a base model has seen: content, but no chat format); the amount
    per language follows `shares` (relative to the largest), so the pretrained model knows languages unevenly.
    Items equal to evaluation items (`exclude[task]`) never appear.
    """
    exclude = exclude or {}
    top = max(shares.values()) or 1.0
    corpus: dict[str, list[str]] = {}
    for lang, share in shares.items():
        n = int(round(items_for_largest * share / top))
        rng = random.Random(f"pretrain/{lang}/{seed}")
        maths = make_items("math", f"pretrain-{lang}", n // 2, seed, exclude.get("math"))
        apis = make_items("api", f"pretrain-{lang}", n // 4, seed, exclude.get("api"))
        filler = load_templates(lang)["pretrain"]
        docs = [" ".join(render_math(m, lang)) for m in maths]
        docs += [render_api(a, lang) + " " + json.dumps(a.call, ensure_ascii=False) for a in apis]
        docs += [" ".join(rng.sample(filler, k=min(3, len(filler)))) for _ in range(n - len(docs))]
        rng.shuffle(docs)
        corpus[lang] = docs
    return corpus
