"""The embedded synthetic world: parallel math and API-calling items, and English-centric pretraining text.

Items are language-neutral (numbers, operations, function calls) and are rendered into each language from the
per-language template files in `templates/` (data, not code). Everything is deterministic given a seed.
Source ids carry the split (`math-train-17`), so evaluation items can never be mistaken for training items.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from string import Formatter
from typing import Any

import yaml

from langmix.errors import UserInputError
from langmix.records import Example, trusted_example

TEMPLATE_DIR = Path(__file__).parent / "templates"

# Argument values: large enough sets that no single memorised call scores, all written the same way in every
# language (Latin-script names and codes that the model must copy from the request).
CITIES = ["Paris", "Tokyo", "Nairobi", "Lima", "Berlin", "Cairo", "Delhi", "Sydney", "Bangkok", "Dhaka", "Madrid",
          "Rome", "Oslo", "Seoul", "Lagos", "Accra", "Quito", "Hanoi", "Manila", "Dakar", "Kyiv", "Vienna", "Prague",
          "Dublin", "Lisbon", "Athens", "Havana", "Tunis", "Perth", "Osaka"]
PEOPLE = ["Maria", "Kofi", "Amina", "Hiro", "Lena", "Omar", "Priya", "Tomas", "Ines", "Juma", "Mei", "Ravi",
          "Sofia", "Yusuf", "Elena", "Kwame", "Ana", "Chen", "Rosa", "Ali"]
CURRENCIES = ["USD", "EUR", "JPY", "KES", "INR", "THB", "BDT", "GBP", "CNY", "RUB", "BRL", "MXN"]
ROOMS = ["kitchen", "bedroom", "living_room"]
OPS = {"add": "+", "sub": "-", "mul": "*"}
IRRELEVANCE_SHARE = 0.1  # API items whose request no tool serves (the right answer is a short refusal, no call)


def _tool(fname: str, description: str, /, **params: tuple[str, str] | tuple[str, str, list]) -> dict[str, Any]:
    props = {}
    for key, (typ, desc, *enum) in params.items():
        props[key] = {"type": typ, "description": desc, **({"enum": enum[0]} if enum else {})}
    return {"name": fname, "description": description,
            "parameters": {"type": "object", "required": list(params), "properties": props}}


TOOLS: list[dict[str, Any]] = [
    _tool("get_weather", "Current weather in a city.", city=("string", "city name"),
          unit=("string", "temperature unit", ["celsius", "fahrenheit"])),
    _tool("set_alarm", "Set an alarm at a time of day.", hour=("integer", "hour, 0-23"),
          minute=("integer", "minute, 0-59")),
    _tool("convert_currency", "Convert an amount between currencies.", amount=("number", "amount to convert"),
          source=("string", "ISO currency code to convert from"), target=("string", "ISO currency code to convert to")),
    _tool("get_time", "Local time in a city.", city=("string", "city name")),
    _tool("book_flight", "Book a flight.", origin=("string", "departure city"),
          destination=("string", "arrival city"), passengers=("integer", "number of passengers")),
    _tool("send_money", "Send money in dollars to a person.", recipient=("string", "person's name"),
          amount=("number", "amount in dollars")),
    _tool("set_timer", "Start a countdown timer.", minutes=("integer", "duration in minutes")),
    _tool("call_contact", "Phone a contact.", name=("string", "contact's name")),
    _tool("search_hotels", "Find hotels in a city.", city=("string", "city name"),
          nights=("integer", "number of nights")),
    _tool("set_lights", "Switch the light in a room on or off.", room=("string", "room", ROOMS),
          on=("boolean", "true to switch on, false to switch off")),
]
# The full schemas travel in each example's `tools`; the prompt names the tools only: it opens every API example,
# and with each tool's parameters it would be most of the task's tokens on the tiny model (and overflow the tests'
# short max_length). Argument names are learned from the training calls.
API_SYSTEM = "Tools: " + ", ".join(t["name"] for t in TOOLS) + ". Reply with one JSON call, or say that no tool fits."


class TemplateError(UserInputError):
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

    def values(self) -> tuple[tuple[str, int, int, int], ...]:
        """(op, x, y, z) for each step."""
        return self._values

    @cached_property
    def _values(self) -> tuple[tuple[str, int, int, int], ...]:  # computed once: every rendering asks for them
        out, x = [], self.start
        for op, y in self.steps:
            z = x + y if op == "add" else x - y if op == "sub" else x * y
            out.append((op, x, y, z))
            x = z
        return tuple(out)

    @property
    def answer(self) -> int:
        return self._values[-1][3]


@dataclass(frozen=True)
class ApiItem:
    """A tool request: `function` with its `arguments`, or an irrelevance item (`function` is "", no tool fits;
    `arguments` then holds the request's slot values and `variant` picks the request)."""

    source_id: str
    function: str
    arguments: tuple[tuple[str, Any], ...]
    variant: int = 0

    @property
    def relevant(self) -> bool:
        return bool(self.function)

    @property
    def call(self) -> dict[str, Any] | None:
        return {"name": self.function, "arguments": dict(self.arguments)} if self.function else None

    @property
    def reference_calls(self) -> list[dict[str, dict[str, list[Any]]]]:
        """BFCL-style possible answers: [{fname: {arg: [value]}}], or [] (no call wanted)."""
        return [{self.function: {k: [v] for k, v in self.arguments}}] if self.function else []


def _math_item(rng: random.Random, source_id: str) -> MathItem:
    start = x = rng.randint(2, 20)
    steps: list[tuple[str, int]] = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["add"] + (["sub"] if x > 1 else []) + (["mul"] if x * 2 <= 60 else []))
        y = rng.randint(1, 10) if op == "add" else rng.randint(1, x - 1) if op == "sub" else rng.randint(2, 3)
        steps.append((op, y))
        x = x + y if op == "add" else x - y if op == "sub" else x * y
    return MathItem(source_id, rng.randrange(6), rng.randrange(6), start, tuple(steps))


def _api_arguments(rng: random.Random, fn: str) -> tuple[tuple[str, Any], ...]:
    if fn == "get_weather":
        return ("city", rng.choice(CITIES)), ("unit", rng.choice(["celsius", "fahrenheit"]))
    if fn == "set_alarm":
        return ("hour", rng.randint(0, 23)), ("minute", rng.randint(0, 59))
    if fn == "convert_currency":
        src, dst = rng.sample(CURRENCIES, 2)
        return ("amount", rng.randint(1, 999)), ("source", src), ("target", dst)
    if fn == "get_time":
        return (("city", rng.choice(CITIES)),)
    if fn == "book_flight":
        origin, destination = rng.sample(CITIES, 2)
        return ("origin", origin), ("destination", destination), ("passengers", rng.randint(1, 9))
    if fn == "send_money":
        return ("recipient", rng.choice(PEOPLE)), ("amount", rng.randint(1, 999))
    if fn == "set_timer":
        return (("minutes", rng.randint(1, 120)),)
    if fn == "call_contact":
        return (("name", rng.choice(PEOPLE)),)
    if fn == "search_hotels":
        return ("city", rng.choice(CITIES)), ("nights", rng.randint(1, 14))
    if fn == "set_lights":
        return ("room", rng.choice(ROOMS)), ("on", rng.random() < 0.5)
    raise ValueError(f"unknown function {fn!r}")


# The irrelevant requests in the templates, in order, and the slot each one fills.
IRRELEVANT_SLOTS = ("city", "name", "city", "name")


def _api_item(rng: random.Random, source_id: str) -> ApiItem:
    if rng.random() < IRRELEVANCE_SHARE:
        variant = rng.randrange(len(IRRELEVANT_SLOTS))
        slot = IRRELEVANT_SLOTS[variant]
        return ApiItem(source_id, "", ((slot, rng.choice(CITIES if slot == "city" else PEOPLE)),), variant)
    fn = rng.choice([t["name"] for t in TOOLS])
    return ApiItem(source_id, fn, _api_arguments(rng, fn), rng.randrange(2))


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


MATH_SENTENCES = ("start", "add", "sub", "mul", "question", "state", "answer")


def _bind(template: str, fill: dict[str, str]) -> str:
    """`template` with the fields named in `fill` replaced by their values (formatted as `str.format` would),
    every other field and literal brace kept: `_bind(t, f).format(**rest) == t.format(**f, **rest)`."""
    out = []
    for literal, name, spec, conversion in Formatter().parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name in fill:
            value = Formatter().convert_field(fill[name], conversion) if conversion else fill[name]
            out.append(format(value, spec or "").replace("{", "{{").replace("}", "}}"))
        else:
            out.append("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return "".join(out)


@lru_cache(maxsize=None)
def _math_templates(lang: str, name: int, item: int) -> dict[str, str]:
    """The language's math sentences for one name and one item, those two filled in (a keyword `format` with three
    fields costs twice one with one field, and a mixture formats seven sentences per example)."""
    t = load_templates(lang)["math"]
    fill = {"name": t["names"][name], "item": t["items"][item]}
    return {key: _bind(t[key], fill) for key in MATH_SENTENCES}


def math_sentences(item: MathItem, lang: str) -> tuple[list[str], list[str]]:
    """The question's and the solution's sentences in `lang` (the same count in every language)."""
    t = _math_templates(lang, item.name, item.item)
    question = [t["start"].format(a=item.start)]
    solution = []
    for op, x, y, z in item.values():
        question.append(t[op].format(b=y))
        solution.append(f"{x} {OPS[op]} {y} = {z}. " + t["state"].format(z=z))
    question.append(t["question"].format())
    solution.append(t["answer"].format(z=item.answer))
    return question, solution


def render_math(item: MathItem, lang: str) -> tuple[str, str]:
    """(question, solution) in `lang`. The solution ends with the language's own answer phrase."""
    question, solution = math_sentences(item, lang)
    return " ".join(question), " ".join(solution)


def render_api(item: ApiItem, lang: str) -> str:
    """The user request for an API item in `lang`."""
    t = load_templates(lang)["api"]
    if not item.relevant:
        return t["irrelevant"][item.variant].format(**dict(item.arguments))
    args = dict(item.arguments)
    fill = dict(args)
    if "unit" in args:
        fill["unit"] = t["units"][args["unit"]]
    if "room" in args:
        fill["room"] = t["rooms"][args["room"]]
    if "minute" in args:
        fill["minute"] = f"{args['minute']:02d}"
    key = item.function
    if item.function == "set_lights":
        key = "set_lights_on" if args["on"] else "set_lights_off"
    return t[key][item.variant].format(**fill)


def render_api_answer(item: ApiItem, lang: str) -> str:
    """The assistant's reply: the JSON call (the same in every language), or the language's refusal."""
    if not item.relevant:
        return load_templates(lang)["api"]["no_tool"]
    return json.dumps(item.call, ensure_ascii=False)


@lru_cache(maxsize=None)
def answer_phrase(lang: str) -> str:
    """The text before the number in the language's answer line (used by strict extraction)."""
    return load_templates(lang)["math"]["answer"].split("{z}")[0].strip()


def to_example(item: MathItem | ApiItem, lang: str) -> Example:
    """The item in `lang` as an Example. Built without pydantic's validation (`trusted_example`, which a 1M-example
    mixture calls a million times); what it builds is valid by construction, and a test validates every shape it
    makes."""
    if isinstance(item, MathItem):
        question, solution = render_math(item, lang)
        return trusted_example(
            f"{item.source_id}-{lang}", item.source_id, "math", lang,
            [{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
            None, {"answer": item.answer, "answer_phrase": answer_phrase(lang)})
    return trusted_example(
        f"{item.source_id}-{lang}", item.source_id, "api", lang,
        [{"role": "system", "content": API_SYSTEM}, {"role": "user", "content": render_api(item, lang)},
         {"role": "assistant", "content": render_api_answer(item, lang)}],
        TOOLS, {"calls": item.reference_calls})


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
    seen: content, but no chat format), in the proportions of `PRETRAIN_MIX`. The number of documents per language follows `shares`
    (relative to the largest), so the pretrained model knows languages unevenly.

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
