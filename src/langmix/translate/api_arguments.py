"""Checks of a translated API dialogue against the argument values of its calls (`api_reasons`: refused or flagged
by the translation policy; `api_notes`: kept and counted in qa.md), and which reference arguments the translated
request still writes word for word (`verbatim_arguments`, read by the API checker's leniencies)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterator

from langmix.evaluate.math import numbers
from langmix.languages import WORD
from langmix.records import Example

# An argument value shaped like an identifier (a letter, and a digit, _, @, ., / or an inner capital: user123,
# JaneSmith, quarterly_report.txt, ann@x.org), which no translation should change. Plain words may be translated,
# and dates and times may be rewritten in the target language's format (their numbers are checked).
_IDENTIFIER = re.compile(r"(?=\S*[A-Za-z])(?=\S*(?:[\d_@./]|[a-z][A-Z]))\S+")


def api_reasons(ex: Example, originals: list[str], translations: list[str | None], lang: str) -> list[str]:
    """Checks of a translated API dialogue against the argument values of its calls, the reference calls and the
    calls in its history (the assistant's tool calls in `messages`):
    - argument_changed: an identifier-shaped value written in the English user turns is missing from their
      translations (the dialogue would ask for one value and the call use another);
    - argument_order_changed: a user turn that writes two or more numeric argument values has them in another
      order in its translation ("base 10, height 5" -> "base 5, height 10" keeps the multiset of numbers but
      swaps the labels). A legitimate reordering is flagged too (counted in qa.md); a translation that keeps
      the numbers' order but swaps the words naming them is not caught."""
    if ex.task != "api" or not originals:
        return []
    values = _argument_values(ex)
    identifiers = {v for v in values if isinstance(v, str) and _IDENTIFIER.fullmatch(v)}
    source = " ".join(originals)
    translated = " ".join(t or "" for t in translations)
    reasons = []
    if any(v in source and v not in translated for v in identifiers):
        reasons.append("argument_changed")
    numeric = {round(float(v), 6) for v in values if _is_number(v)}
    for original, translation in zip(originals, translations):
        src = [v for v in numbers(original, "en", cjk=False) if round(v, 6) in numeric]
        tgt = [v for v in numbers(translation or "", lang, cjk=False) if round(v, 6) in numeric]
        if len(set(src)) >= 2 and sorted(src) == sorted(tgt) and src != tgt:
            reasons.append("argument_order_changed")
            break
    return reasons


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        return isinstance(value, str) and bool(value.strip()) and float(value) == float(value)
    except ValueError:
        return False


def _argument_values(ex: Example) -> list:
    """Every argument value of the reference calls and of the tool calls in the dialogue's history."""
    values = [v for _, _, options in _argument_options(ex.reference) for v in options]
    for msg in ex.messages:
        if msg["role"] != "assistant":
            continue
        for call in _history_calls(msg["content"]):
            values.extend(_flat(call.get("arguments")))
    return values


def _history_calls(text: str) -> list[dict]:
    """The tool calls an assistant turn makes ({"name": ..., "arguments": {...}} or a list of them); none for a
    plain-language turn."""
    body = text.strip()
    if body[:1] not in "{[":
        return []
    try:
        obj = json.loads(body)
    except ValueError:
        return []
    calls = obj if isinstance(obj, list) else [obj]
    return [c for c in calls if isinstance(c, dict) and isinstance(c.get("arguments"), dict)]


def _flat(obj) -> Iterator:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _flat(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _flat(v)
    else:
        yield obj


def _argument_options(reference: dict) -> Iterator[tuple[str, str, list]]:
    """(function, argument, the values it accepts) of each argument of each reference call."""
    for call in reference.get("calls", []):
        for name, args in call.items():
            for key, options in (args.items() if isinstance(args, dict) else ()):
                yield name, key, options if isinstance(options, list) else []



def assistant_text_turns(ex: Example) -> int:
    """How many of an API dialogue's assistant turns are plain language (not tool calls): left untranslated."""
    if ex.task != "api":
        return 0
    return sum(1 for m in ex.messages if m["role"] == "assistant" and m["content"].strip()
               and not _history_calls(m["content"]))


def _no_spaces(ch: str) -> bool:
    """Whether `ch` is written in a script without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar)."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR"))


def occurs(value: str, text: str) -> bool:
    """Whether `value` is written in `text` as whole words: "bar" is not in "barra", nor "Ann" in "Annual"; next to
    a script written without spaces (Japanese, Chinese, Thai) any occurrence counts."""
    start = text.find(value)
    while start >= 0:
        end = start + len(value)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if all(not c.isalnum() or _no_spaces(c) or _no_spaces(edge) for c, edge in ((before, value[0]),
                                                                                   (after, value[-1]))):
            return True
        start = text.find(value, start + 1)
    return False


def verbatim_arguments(reference: dict, user_text: str) -> list[str]:
    """"function.argument" of each reference argument one of whose accepted values the user's turns write word for
    word (its value is the user's own words, whatever the language)."""
    return sorted(f"{name}.{key}" for name, key, options in _argument_options(reference)
                  if any(isinstance(v, str) and v and occurs(v, user_text) for v in options))




def api_notes(ex: Example, originals: list[str], translations: list[str | None]) -> list[str]:
    """What a kept API translation did that is counted in qa.md, not refused: `argument_not_in_request`, a reference
    call's argument whose value the English request wrote as words ("Kwame", "team meeting") and whose translated
    request writes none of its accepted values (a name localised, "Kwame" -> "Juan", or a plain value translated,
    "meeting" -> "reunion"): trained on, the call then uses a value the request no longer states. Identifier-shaped
    values are `argument_changed` (a reason) and numbers are checked as numbers."""
    if ex.task != "api" or not originals:
        return []
    source = " ".join(originals)
    translated = " ".join(t or "" for t in translations)
    for _, _, options in _argument_options(ex.reference):
        words = [v for v in options if isinstance(v, str) and any(len(w) >= 3 for w in WORD.findall(v))
                 and not _IDENTIFIER.fullmatch(v)]
        if any(occurs(v, source) for v in words) and not any(occurs(v, translated) for v in words):
            return ["argument_not_in_request"]
    return []
