"""Structure preservation: protect numbers and expressions with placeholders, and compare the numbers of a
source and its translation under the target language's digit and separator conventions."""

from __future__ import annotations

import re
from collections import Counter

from langmix.evaluate.math import numbers

# Calculator annotations, arithmetic expressions, money and plain numbers, longest first.
_NUM = r"[$€£¥₹]?\d(?:[\d,.]*\d)?"
PROTECT = re.compile(r"<<[^>]*>>|" + _NUM + r"(?:\s*[-+*/×÷=]\s*" + _NUM + r")+|" + _NUM + "%?")
PLACEHOLDER = re.compile(r"⟦(\d+)⟧")


def protect(text: str) -> tuple[str, list[str]]:
    """Replace numbers and expressions by ⟦0⟧, ⟦1⟧, ...; returns the masked text and the protected spans."""
    spans: list[str] = []

    def sub(match: re.Match) -> str:
        spans.append(match.group())
        return f"⟦{len(spans) - 1}⟧"

    return PROTECT.sub(sub, text), spans


def restore(text: str, spans: list[str]) -> tuple[str, list[int]]:
    """Put the spans back; returns the text and the indexes of placeholders that were lost in translation."""
    seen: set[int] = set()

    def sub(match: re.Match) -> str:
        i = int(match.group(1))
        if i >= len(spans):
            return match.group()
        seen.add(i)
        return spans[i]

    return PLACEHOLDER.sub(sub, text), [i for i in range(len(spans)) if i not in seen]


# Template placeholders and inline code, which a translation must carry over unchanged: {name}, {{name}}, {0},
# printf-style %s/%d/%.2f/%(name)s, and `code` spans.
TEMPLATE = re.compile(r"\{\{[^{}\n]+\}\}|\{[A-Za-z_][\w.]*\}|\{\d+\}"
                      r"|%(?:\([A-Za-z_]\w*\))?[-+#0]*\d*(?:\.\d+)?[sdif](?![A-Za-z])"
                      r"|`[^`\n]+`")


def templates_preserved(source: str, target: str) -> bool:
    """Every template placeholder and code span of the source appears in the translation as often, unchanged."""
    return Counter(TEMPLATE.findall(source)) <= Counter(TEMPLATE.findall(target))


def number_multiset(text: str, lang: str) -> Counter:
    """Digit-written numbers of a text (native digits and the language's separators understood)."""
    return Counter(round(v, 6) for v in numbers(text, lang, cjk=False))


# English number words a translator may legitimately write as digits (or the reverse).
NUMBER_WORDS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
                 "hundred": 100, "thousand": 1000, "million": 1e6, "dozen": 12, "half": 0.5, "twice": 2,
                 "double": 2, "triple": 3, "once": 1, "quarter": 0.25, "a": 1, "an": 1, "per": 1, "each": 1,
                 "every": 1, "single": 1, "pair": 2, "couple": 2, "week": 7, "hour": 60, "percent": 100}
_WORD = re.compile(r"[a-z]+")


def numbers_preserved(source: str, target: str, target_lang: str) -> tuple[bool, str]:
    """Every digit-written number of the English source must appear in the translation; a number the
    translation adds must be one the source wrote as a word ("three" -> 3, "a day" -> 1日).
    Returns (ok, what differs)."""
    src, tgt = number_multiset(source, "en"), number_multiset(target, target_lang)
    missing = src - tgt
    words = {NUMBER_WORDS[w] for w in _WORD.findall(source.lower()) if w in NUMBER_WORDS}
    extra = [v for v in (tgt - src).elements() if v not in words]
    if not missing and not extra:
        return True, ""
    return False, f"missing {sorted(missing.elements())} extra {sorted(extra)}"


def spans_present(spans: list[str], indexes: list[int], text: str, lang: str) -> list[int]:
    """Of the placeholder spans at `indexes`, those whose numbers do not all appear in `text`."""
    have = number_multiset(text, lang)
    return [i for i in indexes if not number_multiset(spans[i], "en") <= have]
