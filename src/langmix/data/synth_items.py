"""The synthetic world's items: language-neutral math problems and tool requests drawn from a seed
(`make_items`, `content_key`), rendered into a language from its template file (`render_math`, `render_api`) and
built into Examples (`to_example`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cached_property, lru_cache
from string import Formatter
from typing import Any

from langmix.data.synth_content import (API_SYSTEM, CITIES, CURRENCIES, IRRELEVANT_SLOTS, OPS, PEOPLE, ROOMS, TOOLS,
                                        load_templates)
from langmix.records import Example, trusted_example

IRRELEVANCE_SHARE = 0.1  # API items whose request no tool serves (the right answer is a short refusal, no call)


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
