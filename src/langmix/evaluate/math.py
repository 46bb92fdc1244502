"""Final-answer extraction for math outputs.

Two modes, reported separately: *strict* reads the first number after the last occurrence of one of the
language's answer phrases (the registry's `answer_phrases`: the MGSM exemplars' phrases and documented variants,
see `langmix.languages`); *flexible* reads the last number in the output. Extraction is linear in the output's
length; only outputs over 1 MB are refused. Numbers are normalised before comparison:
native and full-width digits (Python's `\\d` matches every Unicode decimal digit and `int()` converts it),
thousands separators by the language's convention (`1,234`; `1.234` in de/es; `1 234` in fr/ru), decimals
(`29.00` == 29), currency and unit symbols around the number, and simple CJK numerals (`二十三`).
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from langmix import languages as langs

MAX_OUTPUT_CHARS = 1_000_000  # only pathological sizes are refused; a rambling 2,000-token answer is scored
MAX_NUMBER_CHARS = 100  # a longer run of digits is not read as a number

# Languages whose decimal mark is a comma (so "." or a space groups thousands).
COMMA_DECIMAL = {"de", "es", "fr", "ru", "it", "pt", "id"}
SPACE_GROUPING = {"fr", "ru"}
CJK_NUMERAL_LANGUAGES = {"zh", "ja"}

_SPACES = "\u00a0\u202f\u2009 "
_NUMBER = re.compile(r"-?(?:\d+|(?<![\d.,])\.(?=\d))(?:(?:[.,]|[" + _SPACES + r"](?=\d{3}(?!\d)))?\d+)*(?:\s*[万萬億亿])?")
_CJK_MULTIPLIER = {"万": 10_000, "萬": 10_000, "億": 100_000_000, "亿": 100_000_000}
_CJK_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9}
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "萬": 10_000}
_NUMBER_CHARS = frozenset(".,-" + _SPACES + "".join(_CJK_MULTIPLIER) + "".join(_CJK_DIGITS) + "".join(_CJK_UNITS))
_CJK_NUMBER = re.compile("[" + "".join(_CJK_DIGITS) + "".join(_CJK_UNITS) + "]+")


@dataclass(frozen=True)
class MathVerdict:
    strict: float | None
    flexible: float | None
    strict_correct: bool
    flexible_correct: bool
    reason: str  # "ok", "wrong", "no_answer_phrase", "no_number", "too_long"
    phrase: str | None = None  # the answer phrase strict extraction found (as written), None if none


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


def parse_number(text: str, lang: str = "en") -> float | None:
    """One number as written in `lang` ('1,234' -> 1234, '1.234' in de -> 1234, '29.00' -> 29, '৪২' -> 42)."""
    s = _ascii_digits(text.strip())
    for ch in _SPACES:
        s = s.replace(ch, "")
    if lang in COMMA_DECIMAL:
        if s.count(",") == 1 and not re.fullmatch(r"-?\d{1,3},\d{3}", s):
            s = s.replace(".", "").replace(",", ".")
        elif "," not in s and s.count(".") >= 1 and all(len(g) == 3 for g in s.split(".")[1:]):
            s = s.replace(".", "")  # 1.234 groups thousands
        else:
            s = s.replace(",", "")
    else:
        s = s.replace(",", "")
    try:
        return float(Decimal(s))
    except (InvalidOperation, ValueError):
        return None


def parse_cjk(text: str) -> int | None:
    """Simple CJK numerals: 七 -> 7, 十五 -> 15, 二十三 -> 23, 三百零五 -> 305, 两千 -> 2000."""
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CJK_DIGITS:
            if digit is not None and digit != 0:
                return None  # 二三 is a sequence of digits, not a number: ambiguous
            digit = _CJK_DIGITS[ch]
        elif ch in ("万", "萬"):
            section += digit or 0
            total += (section or 1) * 10_000
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * _CJK_UNITS[ch]
            digit = None
    return total + section + (digit or 0)


def _number_matches(output: str, lang: str, cjk: bool) -> Iterator[tuple[int, str, bool]]:
    """(start, text, is_cjk) of every candidate number in `output`, lazily and in order of position."""
    arabic = ((m.start(), m.group(), False) for m in _NUMBER.finditer(output))
    if not (cjk and lang in CJK_NUMERAL_LANGUAGES):
        return arabic
    return heapq.merge(arabic, ((m.start(), m.group(), True) for m in _CJK_NUMBER.finditer(output)))


def _value(text: str, is_cjk: bool, lang: str, after_multiplier: bool) -> float | None:
    if len(text) > MAX_NUMBER_CHARS:
        return None  # a run of digits this long is not an answer; parsing it would only cost time
    if is_cjk:
        return None if after_multiplier else (lambda v: None if v is None else float(v))(parse_cjk(text))
    scale = 1
    if text[-1] in _CJK_MULTIPLIER:  # 8万 = 80,000
        text, scale = text[:-1].rstrip(), _CJK_MULTIPLIER[text[-1]]
    value = parse_number(text, lang)
    return value * scale if value is not None else None


def _values(matches: Iterable[tuple[int, str, bool]], lang: str) -> Iterator[float]:
    """Parsed values of `matches` (in order), skipping the CJK numeral that is the 万 of an Arabic `8万`."""
    multiplier_at = -1
    for start, text, is_cjk in matches:
        value = _value(text, is_cjk, lang, after_multiplier=is_cjk and start == multiplier_at)
        if not is_cjk and text[-1] in _CJK_MULTIPLIER:
            multiplier_at = start + len(text) - 1
        if value is not None:
            yield value


def numbers(output: str, lang: str = "en", cjk: bool = True) -> list[float]:
    """Every number in `output`, in order (Arabic, native or full-width digits, and CJK numerals unless
    `cjk=False`)."""
    return list(_values(_number_matches(output, lang, cjk), lang))


def first_number(text: str, lang: str = "en") -> float | None:
    """The first number in `text`; stops reading at it."""
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
    cjk = list(_CJK_NUMBER.finditer(output, start)) if lang in CJK_NUMERAL_LANGUAGES else []
    i, j = len(arabic) - 1, len(cjk) - 1
    while i >= 0 or j >= 0:
        if j < 0 or (i >= 0 and arabic[i].start() > cjk[j].start()):
            value, i = _value(arabic[i].group(), False, lang, False), i - 1
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


@lru_cache(maxsize=256)
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for any of `phrases` (NFKC): a run of whitespace in a phrase matches any
    whitespace, and a colon may follow whitespace (French "Réponse :" for "Réponse:")."""
    parts = []
    for phrase in dict.fromkeys(unicodedata.normalize("NFKC", p).strip() for p in phrases if p and p.strip()):
        tokens = re.split(r"(\s+|:)", phrase)
        parts.append("".join(r"\s+" if t.isspace() else r"\s*:" if t == ":" else re.escape(t) for t in tokens if t))
    if not parts:
        return None
    parts.sort(key=len, reverse=True)  # the longest phrase wins where two start at the same place
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


def _last_phrase(output: str, phrases: tuple[str, ...]) -> re.Match[str] | None:
    pattern = phrase_pattern(phrases)
    last = None
    for last in pattern.finditer(output) if pattern else ():
        pass
    return last


def extract_strict(output: str, answer_phrase: str | Sequence[str], lang: str = "en") -> float | None:
    """The first number after the last occurrence of any of the answer phrases (case-insensitive)."""
    phrases = (answer_phrase,) if isinstance(answer_phrase, str) else tuple(answer_phrase)
    match = _last_phrase(output, phrases)
    return first_number(output[match.end():], lang) if match else None


def accepted_phrases(answer_phrase: str, lang: str) -> tuple[str, ...]:
    """What strict scoring accepts: the item's own phrase (if any), then the language's registry phrases."""
    return tuple(dict.fromkeys(([answer_phrase] if answer_phrase else []) + list(langs.answer_phrases(lang))))


def score_math(output: str, answer: float, answer_phrase: str = "", lang: str = "en", *,
               phrases: Sequence[str] | None = None) -> MathVerdict:
    """Score one output against the reference answer. Never raises: bad outputs are wrong, with a reason.

    Strict accepts `answer_phrase` and every answer phrase of `lang` in the language registry (exemplar phrases
    and documented variants); pass `phrases` to use exactly those instead. Linear in the output's length; only
    outputs over `MAX_OUTPUT_CHARS` (1 MB) are refused as `too_long`.
    """
    if len(output) > MAX_OUTPUT_CHARS:
        return MathVerdict(None, None, False, False, "too_long")
    output = unicodedata.normalize("NFKC", output)
    accepted = tuple(phrases) if phrases is not None else accepted_phrases(answer_phrase, lang)
    match = _last_phrase(output, accepted)
    strict = first_number(output[match.end():], lang) if match else None
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
