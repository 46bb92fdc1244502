"""Final-answer extraction for math outputs.

Two modes, reported separately: *strict* reads the first number after the last occurrence of one of the
language's answer phrases that has one (the registry's `answer_phrases`: the MGSM exemplars' phrases and
documented variants, see `langmix.languages`; a closing colon may carry Markdown emphasis, a closing dash may be
an em or en dash or a hyphen); *flexible* reads the last number in the output. Extraction is linear in the
output's length; only outputs over 1 MB are refused. A number is Arabic, native or full-width digits with their
separators and CJK multipliers, read as its language writes it (`evaluate.number_reading`: `1,234`, `1.234` in
de, `70,000.00` in every language, `٧٠٬٠٠٠`, `1万8千`), or simple CJK numerals (`二十三`), except at the start of
words that state no quantity (一共 "in all", 一次 "once", 十分 "very") or right after Arabic digits (the 千 of
`5千克`, 5 kg); currency and unit symbols around it are not part of it. The minus sign U+2212 is a minus, and a
minus counts only where no digit or Latin letter precedes it (`20-25` is a range); superscript and subscript digits
(`m²`) are dropped; `1e2` reads as the numbers 1 and 2 (scientific notation is no number: see `number_reading`).
"""

from __future__ import annotations

import heapq
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from langmix import languages as langs
from langmix.evaluate.number_reading import (ARABIC_SEPARATORS, CJK_DIGITS, CJK_MULTIPLIERS, CJK_UNITS, SPACES,
                                             parse_cjk, parse_with_multipliers, unreadable)

__all__ = ["CJK_NUMERAL_LANGUAGES", "MAX_NUMBER_CHARS", "MAX_OUTPUT_CHARS", "MathVerdict", "accepted_phrases",
           "extract_flexible", "extract_strict", "first_number", "numbers", "parse_cjk", "phrase_pattern",
           "score_math"]

log = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 1_000_000  # only pathological sizes are refused; a rambling 2,000-token answer is scored
MAX_NUMBER_CHARS = 100  # a longer run of digits is not read as a number

CJK_NUMERAL_LANGUAGES = {"zh", "ja"}


# A number: a minus only where no digit or Latin letter precedes it (`20-25` is a range, `COVID-19` a name; `答案是-5`
# is -5), digits with `.`/`,`, Arabic separators and spaces (before 3 digits) inside, then CJK multipliers each
# optionally followed by more digits (`8万`, `1万2000`, `1亿2000万`, `8千`, `1万8千`, `3百`), but not the 千 of a metric
# unit (`5千克` is 5 kg, `3千米` 3 km) nor the 百 of 百分 (percent) or 百米. Spaces group thousands in every
# language: Spanish writes `80 000`.
_NUMBER = re.compile(r"(?:(?<![\dA-Za-z])-)?(?:\d+|(?<![\d.,\u066b\u066c])[.\u066b](?=\d))"
                     r"(?:(?:[.,\u066b\u066c]|[" + SPACES + r"](?=\d{3}(?!\d)))?\d+)*"
                     r"(?:\s*(?:[億亿万萬]|千(?![克米瓦卡焦赫伏帕兆])|百(?![分米]))\d*)*")
# Superscript and subscript digits are exponents and indices (`m²`, `H₂O`), never an answer; NFKC would make them
# digits. U+2212 is the minus sign, which NFKC leaves alone.
_DROP_BEFORE_NFKC = str.maketrans({**{ch: None for ch in "⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉"}, "\u2212": "-"})
_NUMBER_CHARS = frozenset(".,-" + ARABIC_SEPARATORS + SPACES + "".join(CJK_MULTIPLIERS) + "".join(CJK_DIGITS)
                          + "".join(CJK_UNITS))
_CJK_NUMBER = re.compile("[" + "".join(CJK_DIGITS) + "".join(CJK_UNITS) + "]+")
# Common words that begin with a numeral character but state no quantity (一共 "in all", 一次 "once", 十分 "very",
# 万一 "in case", 一人あたり "per person"): a numeral at their start is not a number.
_CJK_NUMERAL_WORDS = ("一共", "一起", "一下", "一些", "一点", "一样", "一直", "一定", "一般", "一旦", "一切", "一边",
                      "一次", "一致", "一半", "十分", "万一", "一人あたり", "一人当たり", "一緒", "一番", "一度",
                      "一応", "一方", "一体", "統一", "统一", "唯一")


@dataclass(frozen=True)
class MathVerdict:
    strict: float | None
    flexible: float | None
    strict_correct: bool
    flexible_correct: bool
    reason: str  # "ok", "wrong", "no_answer_phrase", "no_number", "too_long"
    phrase: str | None = None  # the answer phrase strict extraction found (as written), None if none


def _in_numeral_word(output: str, at: int) -> bool:
    """Whether the numeral character at `at` is part of a word in _CJK_NUMERAL_WORDS."""
    return any(ch == output[at] and k <= at and output.startswith(word, at - k)
               for word in _CJK_NUMERAL_WORDS for k, ch in enumerate(word))


def _after_digit(output: str, at: int) -> bool:
    """Whether the character at `at` follows an Arabic digit (with whitespace between or not). A CJK numeral there is
    a multiplier read with its digits (`8千`, `7 万`) or a unit's prefix (`5千克` is 5 kg, `3百分点` 3 points), never
    a number of its own."""
    at -= 1
    while at >= 0 and output[at].isspace():
        at -= 1
    return at >= 0 and output[at].isdigit()


def _cjk_matches(output: str, start: int = 0) -> Iterator[re.Match[str]]:
    """CJK numerals in `output` from `start`, except one that begins inside a word of _CJK_NUMERAL_WORDS or right
    after an Arabic digit (`_after_digit`)."""
    return (m for m in _CJK_NUMBER.finditer(output, start)
            if not _in_numeral_word(output, m.start()) and not _after_digit(output, m.start()))


def _number_matches(output: str, lang: str, cjk: bool) -> Iterator[tuple[int, str, bool]]:
    """(start, text, is_cjk) of every candidate number in `output`, lazily and in order of position."""
    arabic = ((m.start(), m.group(), False) for m in _NUMBER.finditer(output))
    if not (cjk and lang in CJK_NUMERAL_LANGUAGES):
        return arabic
    return heapq.merge(arabic, ((m.start(), m.group(), True) for m in _cjk_matches(output)))


def _value(text: str, is_cjk: bool, lang: str, after_multiplier: bool) -> float | None:
    if len(text) > MAX_NUMBER_CHARS:
        return None  # a run of digits this long is not an answer; parsing it would only cost time
    if is_cjk:
        return None if after_multiplier else (lambda v: None if v is None else float(v))(parse_cjk(text))
    return parse_with_multipliers(text, lang)


def _values(matches: Iterable[tuple[int, str, bool]], lang: str) -> Iterator[float | None]:
    """Parsed values of `matches` (in order), skipping a CJK numeral inside an Arabic match (the 万 of `8万`) and
    other text that is no number; None for a number whose separators are ambiguous (`number_reading.unreadable`)."""
    covered_until = -1
    for start, text, is_cjk in matches:
        value = _value(text, is_cjk, lang, after_multiplier=is_cjk and start < covered_until)
        if not is_cjk:
            covered_until = start + len(text)
        if value is not None:
            yield value
        elif not is_cjk and unreadable(text, lang):
            yield None


def numbers(output: str, lang: str = "en", cjk: bool = True) -> list[float]:
    """Every readable number in `output`, in order (Arabic, native or full-width digits, and CJK numerals unless
    `cjk=False`)."""
    return [v for v in _values(_number_matches(output, lang, cjk), lang) if v is not None]


def first_number(text: str, lang: str = "en") -> float | None:
    """The first number in `text`; stops reading at it (None where it is ambiguous as written:
    `number_reading.unreadable`)."""
    return next(_values(_number_matches(text, lang, True), lang), None)


def _safe_start(output: str, start: int) -> int:
    """The nearest position at or before `start` that no number can span: its preceding character cannot be
    part of a number (so scanning from there finds exactly the numbers a scan from the beginning finds)."""
    while start > 0 and (output[start - 1] in _NUMBER_CHARS or output[start - 1].isdigit()
                         or output[start - 1].isspace()):
        start -= 1
    return start


def _last_in(output: str, start: int, lang: str) -> float | None:
    """The last number found scanning `output` from `start` (a safe position), parsed from the end."""
    arabic = list(_NUMBER.finditer(output, start))
    cjk = list(_cjk_matches(output, start)) if lang in CJK_NUMERAL_LANGUAGES else []
    i, j = len(arabic) - 1, len(cjk) - 1
    while i >= 0 or j >= 0:
        if j < 0 or (i >= 0 and arabic[i].start() > cjk[j].start()):
            value, i = _value(arabic[i].group(), False, lang, False), i - 1
            if value is None and unreadable(arabic[i + 1].group(), lang):
                return None  # the last number is unreadable as written: no answer, not the number before it
        else:  # a CJK numeral inside the previous Arabic match is the 万 of `8万`, read with its digits
            inside = i >= 0 and arabic[i].end() > cjk[j].start()
            value, j = _value(cjk[j].group(), True, lang, inside), j - 1
        if value is not None:
            return value
    return None


def extract_flexible(output: str, lang: str = "en") -> float | None:
    """The last number in `output`. Linear, and usually reading only the tail: windows from the end double in
    size until one holds a number."""
    window = 2_000
    while True:
        start = _safe_start(output, max(0, len(output) - window))
        value = _last_in(output, start, lang)
        if value is not None or start == 0:
            return value
        window *= 4


# A phrase's closing colon, with Markdown emphasis around it ("**Answer**: 18"); a closing dash, written as an em or
# en dash or as a hyphen before a space ("Ответ - 18"; "Answer -5" is no phrase). A colon phrase never matches a
# dash: "the answer — 6 groups" in a check is prose.
_COLON = r"(?:\*\*|__|\*)?\s*:(?:\*\*|__|\*)?"
_DASH = r"\s*(?:[—–]|-(?=\s))"


@lru_cache(maxsize=256)
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for any of `phrases` (NFKC): a run of whitespace in a phrase matches any
    whitespace, and a colon may follow whitespace (French "Réponse :" for "Réponse:")."""
    parts = []
    for phrase in dict.fromkeys(unicodedata.normalize("NFKC", p).strip() for p in phrases if p and p.strip()):
        tokens = [t for t in re.split(r"(\s+|[:—–])", phrase) if t]
        pattern = ""
        for i, token in enumerate(tokens):
            if token in ":—–":
                pattern += _COLON if token == ":" else _DASH
            elif token.isspace():
                pattern += r"\s*" if i + 1 < len(tokens) and tokens[i + 1] in ":—–" else r"\s+"
            else:
                pattern += re.escape(token)
        parts.append(pattern)
    if not parts:
        return None
    parts.sort(key=len, reverse=True)  # the longest phrase wins where two start at the same place
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


_NOTHING = object()  # no number at all (as opposed to None: an ambiguous one)


def _answered_phrase(output: str, phrases: tuple[str, ...], lang: str) -> tuple[re.Match[str] | None, float | None]:
    """(the last phrase occurrence followed by a number before the next occurrence, that number): a phrase left
    without its number ("The answer is 18. ... The answer is" at the end of a cut-off output) does not hide the
    one before it. Where no occurrence has a number: (the last occurrence, None); (None, None) where none."""
    pattern = phrase_pattern(phrases)
    matches = list(pattern.finditer(output)) if pattern else []
    for i in range(len(matches) - 1, -1, -1):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(output)
        values = _values(_number_matches(output[matches[i].end():end], lang, True), lang)
        value = next(values, _NOTHING)
        if value is not _NOTHING:  # a number, or None where it is ambiguous as written (no answer, no fallback)
            return matches[i], value
    return (matches[-1] if matches else None), None


def extract_strict(output: str, answer_phrase: str | Sequence[str], lang: str = "en") -> float | None:
    """The number after the last occurrence of any of the answer phrases (case-insensitive) that has one."""
    phrases = (answer_phrase,) if isinstance(answer_phrase, str) else tuple(answer_phrase)
    return _answered_phrase(_prepare(output), phrases, lang)[1]


def _prepare(output: str) -> str:
    return unicodedata.normalize("NFKC", output.translate(_DROP_BEFORE_NFKC))


_ENGLISH_FALLBACK_WARNED: set[str] = set()  # languages already warned about in this process


def accepted_phrases(answer_phrase: str, lang: str) -> tuple[str, ...]:
    """What strict scoring accepts: the item's own phrase (if any), then the language's registry phrases. A language
    with no phrase of its own in the registry (ar, hi, ko, id, yo) accepts the item's phrase, else English's (its
    canonical one first, what its training targets are written with, `data.answers.target_answer_phrase`, then its
    other forms, as English itself is scored: "Answer: 18" too); where that is English's, a warning says so once
    per language, whichever path scores (a study, `langmix score`,
    re-scoring): its strict accuracy counts answers stated in English's phrase. No phrase is made up for it."""
    own = langs.answer_phrases(lang)
    if own:
        return tuple(dict.fromkeys(([answer_phrase] if answer_phrase else []) + list(own)))
    phrase = answer_phrase or langs.answer_phrase(lang)
    english = langs.answer_phrases("en")
    if phrase.strip().casefold() not in {p.casefold() for p in english}:
        return (phrase,)  # the item's own phrase (its exemplars')
    if lang not in _ENGLISH_FALLBACK_WARNED:
        _ENGLISH_FALLBACK_WARNED.add(lang)
        log.warning("%s has no answer phrase in the language registry, so strict math scoring accepts only "
                    "English's phrases in its outputs (%s; its strict accuracy counts answers stated in English); "
                    "add a sourced phrase for %s to ANSWER_PHRASE_VARIANTS in langmix/languages.py", lang,
                    ", ".join(repr(p) for p in english), lang)
    return tuple(dict.fromkeys([phrase, *english]))  # English's every form, as English itself is scored


def score_math(output: str, answer: float, answer_phrase: str = "", lang: str = "en", *,
               phrases: Sequence[str] | None = None) -> MathVerdict:
    """Score one output against the reference answer. Never raises: bad outputs are wrong, with a reason.

    Strict accepts `answer_phrase` and every answer phrase of `lang` in the language registry (exemplar phrases
    and documented variants; English's for a language without any, with a warning: `accepted_phrases`); pass
    `phrases` to use exactly those instead. Linear in the output's length; only
    outputs over `MAX_OUTPUT_CHARS` (1 MB) are refused as `too_long`.
    """
    if len(output) > MAX_OUTPUT_CHARS:
        return MathVerdict(None, None, False, False, "too_long")
    output = _prepare(output)
    accepted = tuple(phrases) if phrases is not None else accepted_phrases(answer_phrase, lang)
    match, strict = _answered_phrase(output, accepted, lang)
    flexible = extract_flexible(output, lang)
    strict_ok = strict is not None and abs(strict - float(answer)) < 1e-6
    flex_ok = flexible is not None and abs(flexible - float(answer)) < 1e-6
    if flexible is None:
        reason = "no_number"
    elif strict is None:
        reason = "no_answer_phrase" if match is None else "no_number"
    else:
        reason = "ok" if strict_ok else "wrong"
    return MathVerdict(strict, flexible, strict_ok, flex_ok, reason, match.group() if match else None)
