"""Structure preservation: protect numbers and expressions (and JSON, fenced code and LaTeX math, whole) with
placeholders, compare the numbers of a source and its translation under the target language's digit and separator
conventions, and check that the JSON, code and formulas of a source come back unchanged."""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter

from langmix.evaluate.math import numbers
from langmix.languages import WORD
from langmix.translate.number_words import NUMBER_WORDS, standalone_numbers, word_numbers

# Calculator annotations, arithmetic expressions, money and plain numbers, longest first.
# A leading-dot decimal (`.5`, as in GSM8K's `18*.5`) is a number too, unless a letter, digit or separator precedes.
_NUM = r"[$€£¥₹]?(?:\d(?:[\d,.]*\d)?|(?<![\w.,])\.\d+)"
PROTECT = re.compile(r"<<[^>]*>>|" + _NUM + r"(?:\s*[-+*/×÷=]\s*" + _NUM + r")+|" + _NUM + "%?")
PLACEHOLDER = re.compile(r"⟦(\d+)⟧")


_FENCED = re.compile(r"```.*?```", re.S)
_OPENING = re.compile(r"[{\[]")
_DECODER = json.JSONDecoder()


def structured_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block and each JSON object or array (one holding more than numbers) in a
    text: data inside natural language, which a translation must carry over unchanged. Read left to right: a block
    or JSON value found is skipped whole, and a bracket inside a fenced block starts nothing."""
    out: list[tuple[int, int]] = []
    fenced = {m.start(): m.end() for m in _FENCED.finditer(text)}
    starts = sorted(fenced)
    i = 0
    for p in sorted(set(starts).union(m.start() for m in _OPENING.finditer(text))):
        if p < i:
            continue
        if p in fenced:
            out.append((p, fenced[p]))
            i = fenced[p]
            continue
        k = bisect.bisect_right(starts, p) - 1
        if k >= 0 and p < fenced[starts[k]]:  # inside a fenced block
            continue
        try:
            obj, end = _DECODER.raw_decode(text, p)
        except ValueError:
            continue
        if (isinstance(obj, dict) and obj) or (isinstance(obj, list) and any(
                isinstance(v, (dict, list, str)) for v in obj)):
            out.append((p, end))
            i = end
    return out


# LaTeX math: $$...$$, \[...\], \(...\), and $...$ whose content is math, not money: a command (\frac, \times),
# ^ _ { }, or letters only as single-letter variables, not after a leading digit ("$x$", "$n + 1 = y$"; not "$2 per
# egg and $", nor GSM8K's "$12 x 5 =$60"). The inline form opens with no space after `$` and closes with none
# before it and no digit after ("$2 and $3").
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)", re.S)
_INLINE_MATH = re.compile(r"\$(?=[^\s$])([^$\n]+?)(?<=\S)\$(?!\d)")
_LATEX = re.compile(r"\\[A-Za-z]+|[\^_{}]")
_VARIABLES = re.compile(r"(?=.*[A-Za-z])(?!.*[A-Za-z]{2})(?!\d)[A-Za-z\d\s+\-*/().,=<>|!']+")


def math_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each LaTeX math span of a text, outside fenced code: a formula, which a translation must
    carry over (`formulas_preserved`); protected whole like JSON."""
    fenced = [(m.start(), m.end()) for m in _FENCED.finditer(text)]
    out: list[tuple[int, int]] = []
    pos = 0
    while True:
        display, inline = _DISPLAY_MATH.search(text, pos), _INLINE_MATH.search(text, pos)
        while inline and not (_LATEX.search(inline.group(1)) or _VARIABLES.fullmatch(inline.group(1))):
            inline = _INLINE_MATH.search(text, inline.start() + 1)
        found = min((m for m in (display, inline) if m), key=lambda m: m.start(), default=None)
        if found is None:
            return out
        if not any(a <= found.start() < b for a, b in fenced):
            out.append((found.start(), found.end()))
        pos = found.end()


def protect(text: str) -> tuple[str, list[str]]:
    """Replace JSON, fenced code and LaTeX math (whole), then numbers and expressions, by ⟦0⟧, ⟦1⟧, ... in reading
    order; returns the masked text and the protected spans."""
    spans: list[str] = []

    def sub(match: re.Match) -> str:
        spans.append(match.group())
        return f"⟦{len(spans) - 1}⟧"

    whole = structured_spans(text)
    whole += [(a, b) for a, b in math_spans(text) if not any(s < b and a < e for s, e in whole)]
    pieces, pos = [], 0
    for start, end in sorted(whole):
        pieces.append(PROTECT.sub(sub, text[pos:start]))
        spans.append(text[start:end])
        pieces.append(f"⟦{len(spans) - 1}⟧")
        pos = end
    pieces.append(PROTECT.sub(sub, text[pos:]))
    return "".join(pieces), spans


def prose(text: str) -> str:
    """The text without its JSON and fenced code (what language identification should read)."""
    return without_spans(text, structured_spans(text))


def without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with its `spans` (sorted, disjoint) cut out, the pieces joined by spaces."""
    if not spans:
        return text
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pos = end
    return " ".join(pieces + [text[pos:]])


def _structures(text: str) -> Counter:
    """The fenced code blocks (as written) and JSON values (parsed: spacing and key order are no change)."""
    found: Counter = Counter()
    for start, end in structured_spans(text):
        span = text[start:end]
        found[span if span.startswith("```") else json.dumps(json.loads(span), sort_keys=True)] += 1
    return found


def structure_preserved(source: str, target: str) -> bool:
    """Every JSON value and fenced code block of the source appears in the translation unchanged (keys, values,
    code), as often."""
    return _structures(source) <= _structures(target)


_NUMBER_IN_MATH = re.compile(r"\d+(?:[.,]\d+)*")
_TEXT_IN_MATH = re.compile(r"\\(?:text|textrm|textit|textbf|mbox|mathrm|operatorname)\s*\{[^{}]*\}")
_DELIMITERS = re.compile(r"^(?:\$\$|\$|\\\[|\\\()|(?:\$\$|\$|\\\]|\\\))$")


def _formula(span: str) -> str:
    """A formula as compared: without its delimiters, spacing, words in \\text{...} (translatable) and its numbers'
    separators (the target language's may differ: 3.5, 3,5 or 3{,}5; the values are checked with the text's)."""
    body = _DELIMITERS.sub("", span.strip())
    body = _TEXT_IN_MATH.sub(r"\\text{}", body.replace("{,}", ","))
    return "".join(_NUMBER_IN_MATH.sub(lambda m: re.sub(r"[.,]", "", m.group()), body).split())


def formulas_preserved(source: str, target: str) -> bool:
    """Every LaTeX formula of the source appears in the translation as often, with the same commands, variables
    and structure, its digits in the same places: `$\\frac{3}{4} \\times 8$` rewritten as `$\\frac{3}{4}$ ... suma 8
    veces` keeps every number and asks something else, and `$\\frac{4}{3}$` keeps the numbers too."""
    found = [Counter(_formula(text[a:b]) for a, b in math_spans(text)) for text in (source, target)]
    return found[0] <= found[1]


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
    """Every template placeholder and code span of the source appears in the translation as often, unchanged. A
    LaTeX formula's braces (`\\text{apples}`) are no placeholder: formulas are checked by `formulas_preserved`,
    which lets the words in `\\text{}` change."""
    return Counter(TEMPLATE.findall(without_spans(source, math_spans(source)))) \
        <= Counter(TEMPLATE.findall(without_spans(target, math_spans(target))))


def number_multiset(text: str, lang: str) -> Counter:
    """Digit-written numbers of a text (native digits and the language's separators understood)."""
    return Counter(round(v, 6) for v in numbers(text, lang, cjk=False))


def numbers_preserved(source: str, target: str, target_lang: str) -> tuple[bool, str]:
    """Every digit-written number of the English source must appear in the translation; a number the
    translation adds must be one the source wrote as words, each allowance used once (see `word_numbers`).
    Numbers written as words on both sides ("three cats" -> "cinco gatos") are not checked.
    Returns (ok, what differs)."""
    src, tgt = number_multiset(source, "en"), number_multiset(target, target_lang)
    missing = src - tgt
    extra = (tgt - src) - word_numbers(source, target_lang)
    if not missing and not extra:
        return True, ""
    return False, f"missing {sorted(missing.elements())} extra {sorted(extra.elements())}"


def number_words_lost(source: str, target: str, target_lang: str) -> list[float]:
    """The numbers two to twelve the English source writes as a word of their own ("She eats three for breakfast")
    that the translation writes neither in digits nor as a word of the target language (a dropped sentence takes
    them along, and no number check saw them); empty for a language without its words here."""
    stems = NUMBER_WORDS.get(target_lang)
    if not stems:
        return []
    values = {v for v in standalone_numbers(source) if v in stems}
    if not values:
        return []
    digits = number_multiset(target, target_lang)
    return sorted(v for v in values if v not in digits and not stems[v].search(target))


def _numbers_in_order(text: str, lang: str) -> list[float]:
    return [round(v, 6) for v in numbers(text, lang, cjk=False)]


def numbers_swapped(source: str, target: str, target_lang: str) -> bool:
    """Whether two numbers that the source writes before the same word ("3 apples and ... 5 apples"), each once,
    come in the other order in the translation: the sentence reads the same, the counts belong to other things.
    Numbers that count different things may change order with the word order (MGSM's human translations: 1 of
    2,500 does this to numbers before the same word, 5% to any two numbers)."""
    before: list[tuple[float, str]] = []  # each plain number of the source and the word right after it
    for match in PROTECT.finditer(source):
        values = numbers(match.group(), "en", cjk=False)
        word = WORD.match(source, match.end() + 1 if source[match.end():match.end() + 1] == " " else match.end())
        if len(values) == 1 and word:
            before.append((round(values[0], 6), word.group().casefold()))
    counts = Counter(_numbers_in_order(source, "en"))  # a number written twice (`1/6 ... 6 liters`) has no order
    order = {}
    for i, v in enumerate(_numbers_in_order(target, target_lang)):
        order.setdefault(v, i)
    for i, (a, word_a) in enumerate(before):
        for b, word_b in before[i + 1:]:
            if word_a == word_b and a != b and counts[a] == counts[b] == 1 and a in order and b in order \
                    and order[a] > order[b]:
                return True
    return False


def numbers_reordered(source: str, target: str, target_lang: str) -> bool:
    """Whether the translation writes the source's digit numbers (the same ones) in another order."""
    src, tgt = _numbers_in_order(source, "en"), _numbers_in_order(target, target_lang)
    return len(set(src)) > 1 and Counter(src) == Counter(tgt) and src != tgt


def spans_present(spans: list[str], indexes: list[int], text: str, lang: str) -> list[int]:
    """Of the placeholder spans at `indexes`, those whose numbers do not all appear in `text`."""
    have = number_multiset(text, lang)
    return [i for i in indexes if not number_multiset(spans[i], "en") <= have]
