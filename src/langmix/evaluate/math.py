"""Final-answer extraction for math outputs.

Two modes, reported separately: *strict* reads the number after the language's own answer phrase (the last
occurrence); *flexible* reads the last number in the output. Numbers are normalised before comparison:
native and full-width digits (Python's `\\d` matches every Unicode decimal digit and `int()` converts it),
thousands separators by the language's convention (`1,234`; `1.234` in de/es; `1 234` in fr/ru), decimals
(`29.00` == 29), currency and unit symbols around the number, and simple CJK numerals (`二十三`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MAX_OUTPUT_CHARS = 20_000

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
_CJK_NUMBER = re.compile("[" + "".join(_CJK_DIGITS) + "".join(_CJK_UNITS) + "]+")


@dataclass(frozen=True)
class MathVerdict:
    strict: float | None
    flexible: float | None
    strict_correct: bool
    flexible_correct: bool
    reason: str  # "ok", "wrong", "no_answer_phrase", "no_number", "too_long"


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


def numbers(output: str, lang: str = "en", cjk: bool = True) -> list[float]:
    """Every number in `output`, in order (Arabic, native or full-width digits, and CJK numerals unless
    `cjk=False`)."""
    found: list[tuple[int, float]] = []
    taken: set[int] = set()
    for match in _NUMBER.finditer(output):
        taken.update(range(match.start(), match.end()))
        text, scale = match.group(), 1
        if text[-1] in _CJK_MULTIPLIER:  # 8万 = 80,000
            text, scale = text[:-1].rstrip(), _CJK_MULTIPLIER[text[-1]]
        value = parse_number(text, lang)
        value = value * scale if value is not None else None
        if value is not None:
            found.append((match.start(), value))
    for match in _CJK_NUMBER.finditer(output) if cjk and lang in CJK_NUMERAL_LANGUAGES else ():
        if match.start() in taken:  # the 万 of 8万, already read with its digits
            continue
        value = parse_cjk(match.group())
        if value is not None:
            found.append((match.start(), float(value)))
    return [v for _, v in sorted(found)]


def extract_flexible(output: str, lang: str = "en") -> float | None:
    found = numbers(output, lang)
    return found[-1] if found else None


def extract_strict(output: str, answer_phrase: str, lang: str = "en") -> float | None:
    """The first number after the last occurrence of the answer phrase (case-insensitive)."""
    idx = output.casefold().rfind(answer_phrase.casefold()) if answer_phrase else -1
    if idx < 0:
        return None
    found = numbers(output[idx + len(answer_phrase):], lang)
    return found[0] if found else None


def score_math(output: str, answer: float, answer_phrase: str, lang: str = "en") -> MathVerdict:
    """Score one output against the reference answer. Never raises: bad outputs are wrong, with a reason."""
    if len(output) > MAX_OUTPUT_CHARS:
        return MathVerdict(None, None, False, False, "too_long")
    output = unicodedata.normalize("NFKC", output)
    answer_phrase = unicodedata.normalize("NFKC", answer_phrase)
    strict = extract_strict(output, answer_phrase, lang)
    flexible = extract_flexible(output, lang)
    strict_ok = strict is not None and abs(strict - float(answer)) < 1e-6
    flex_ok = flexible is not None and abs(flexible - float(answer)) < 1e-6
    if flexible is None:
        reason = "no_number"
    elif strict is None:
        reason = "no_answer_phrase"
    else:
        reason = "ok" if strict_ok else "wrong"
    return MathVerdict(strict, flexible, strict_ok, flex_ok, reason)
