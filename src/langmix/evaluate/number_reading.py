"""One number as written in a language: what math scoring compares (`evaluate.math` finds the numbers in an
output), and how references (`reference_number`) and the loaders' answers (`data.answers`) are read.

Native and full-width digits are digits (Python's `\\d` matches every Unicode decimal digit and `int()` converts it).
Thousands separators follow the language's convention (`1,234`; `1.234` in de/es; `1 234` everywhere); a number
with both separators is read where their order allows one reading (`70,000.00` and `1.234,5` in every language);
Arabic separators mean one thing everywhere (U+066C thousands, U+066B decimal: `٧٠٬٠٠٠`, `١٨٫٥`); decimals are
values (`29.00` == 29). Separators that admit no single reading (`2,5` in en, `1.2,5` anywhere) make no number, and
no answer where the answer is (`unreadable`), never a guess. Arabic digits with CJK multipliers are their value
(`1万2000` = 12,000, `3万5` = 35,000, `8千` = 8,000, `1万8千` = 18,000, `3百` = 300), and so are simple CJK numerals
(`二十三`, `parse_cjk`).

Scientific notation is not a number here, in outputs or in references: `1e2` in an output reads as the numbers 1
and 2 (as `e` elsewhere splits numbers), so `parse_number`, which also reads references and the loaders' answers,
refuses `1e3` (and `1_000`, `inf`, `nan`), rather than accept a reference that no output could match as written.
A reference given as a JSON number (`1e3` unquoted is 1000) is a number whatever its notation.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from langmix import languages as langs

# Languages whose decimal mark is a comma (so "." or a space groups thousands): the registry's table, which number
# writing (`data.answers.write_number`) reads too.
COMMA_DECIMAL = langs.COMMA_DECIMAL

SPACES = "\u00a0\u202f\u2009 "  # group thousands in every language
ARABIC_SEPARATORS = "\u066b\u066c"  # decimal, thousands
CJK_MULTIPLIERS = {"万": 10_000, "萬": 10_000, "億": 100_000_000, "亿": 100_000_000, "千": 1000, "百": 100}
_SECTION_MULTIPLIERS = frozenset("万萬億亿")  # each closes a section: 2千万 is 2000 x 10,000
CJK_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
CJK_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "萬": 10_000}
_MULTIPLIER_SPLIT = re.compile(r"\s*([万萬億亿千百])")  # 1亿2000万 -> ['1', '亿', '2000', '万', '']


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


# What parse_number reads once digits, spaces and separators are normalised: the extractor's numbers (no exponent,
# no `_` grouping, no inf or nan, which Decimal would read).
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# Commas that group thousands where the comma is no decimal mark: groups of three (`1,234,567`), or the Indian
# lakh grouping (`1,00,000`), never after a leading 0 (`0,125` groups nothing); anything else (`2,5`, `12,50`, `1,2,3`,
# `0,125`) is ambiguous.
_COMMA_GROUPS = re.compile(r"[+-]?(?:[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d?(?:,\d{2})+,\d{3})(?:\.\d*)?")
# A number with both separators has one reading where their order allows one: commas grouping thousands before a
# decimal point (`70,000.00`, `1,00,000.50`) or dots grouping thousands before a decimal comma (`1.234,5`), in
# every language. Any other mix (`1.2,5`, `1,2.5`, `1,234.5,6`) has none.
_POINT_DECIMAL_GROUPED = re.compile(r"[+-]?(?:[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d?(?:,\d{2})+,\d{3})\.\d+")
_COMMA_DECIMAL_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+,\d+")
# Arabic writes U+066C ARABIC THOUSANDS SEPARATOR and U+066B ARABIC DECIMAL SEPARATOR (`٧٠٬٠٠٠`, `١٨٫٥`): each means
# one thing in every language. Its groups are of three; mixed with `.` or `,` it is no number.
_AR_THOUSANDS, _AR_DECIMAL = "\u066c", "\u066b"
_ARABIC_SEPARATED = re.compile(r"[+-]?(?:[1-9]\d{0,2}(?:\u066c\d{3})+|\d+)(?:\u066b\d+)?|[+-]?\u066b\d+")


def _separated(text: str) -> str:
    """`text` with ASCII digits and no spaces: the separators `parse_number` reads."""
    s = _ascii_digits(text.strip())
    for ch in SPACES:
        s = s.replace(ch, "")
    return s


def _ambiguous_separators(s: str, lang: str) -> bool:
    """Whether a number (`_separated`) has separators that admit no single reading. Both `,` and `.`: unless their
    order gives one (`_POINT_DECIMAL_GROUPED`, `_COMMA_DECIMAL_GROUPED`: `70,000.00` is 70000 in es as in en,
    `1.234,5` is 1234.5 in en as in de; `1.2,5` and `1,2.5` are none). Commas alone: in a language whose decimal
    mark is the point, a comma that groups no thousands ('2,5', '12,50', '1,2,3': a decimal comma or a list, never
    25 or 1250); where it is the comma, more than one comma that groups no thousands ('1,2,3', a list). Arabic
    separators: any that `_ARABIC_SEPARATED` does not read ('١٬٢', '1٬234.5')."""
    if _AR_THOUSANDS in s or _AR_DECIMAL in s:
        return not _ARABIC_SEPARATED.fullmatch(s)
    if "," in s and "." in s:
        return not (_POINT_DECIMAL_GROUPED.fullmatch(s) or _COMMA_DECIMAL_GROUPED.fullmatch(s))
    if lang in COMMA_DECIMAL:
        return s.count(",") > 1 and not _COMMA_GROUPS.fullmatch(s)
    return "," in s and not _COMMA_GROUPS.fullmatch(s)


def parse_number(text: str, lang: str = "en") -> float | None:
    """One number as written in `lang` ('1,234' -> 1234, '1.234' in de -> 1234, '29.00' -> 29, '৪২' -> 42); None
    for text that is not one, scientific notation included ('1e3': see the module docstring)."""
    s = _separated(text)
    if _ambiguous_separators(s, lang):
        return None  # '2,5' in en is not 25, '1.2,5' in de neither 1.25 nor 12.5
    if _AR_THOUSANDS in s or _AR_DECIMAL in s:
        s = s.replace(_AR_THOUSANDS, "").replace(_AR_DECIMAL, ".")
    elif "," in s and "." in s:  # the order decides (`_ambiguous_separators`): the last separator is the decimal
        s = s.replace(",", "") if s.rfind(".") > s.rfind(",") else s.replace(".", "").replace(",", ".")
    elif lang in COMMA_DECIMAL:
        # '1,234' groups thousands, '0,125' cannot (a group never starts a number at 0): it is 0.125
        if s.count(",") == 1 and not re.fullmatch(r"[+-]?[1-9]\d{0,2},\d{3}", s):
            s = s.replace(".", "").replace(",", ".")
        elif "," not in s and s.count(".") >= 1 and all(len(g) == 3 for g in s.split(".")[1:]) \
                and s.lstrip("-").split(".")[0] not in ("", "0"):
            s = s.replace(".", "")  # 1.234 groups thousands (0.125 cannot: a group never starts a number at 0)
        else:
            s = s.replace(",", "")
    else:
        s = s.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(s):
        return None
    try:
        return float(Decimal(s))
    except (InvalidOperation, ValueError):
        return None


def reference_number(ref: object) -> float:
    """A reference answer as a finite number: a JSON number, or text `parse_number` reads (English separators:
    '1,234'; not '1e3'). ValueError for NaN, infinities, overflow, booleans, scientific notation and non-numbers.
    Evaluation (`tasks.math`) and `langmix score` read references through here."""
    if isinstance(ref, bool) or not isinstance(ref, (int, float, str)):
        raise ValueError(f"reference {ref!r} is not a number")
    try:
        value = float(ref) if isinstance(ref, (int, float)) else parse_number(ref)
    except OverflowError:  # an int too large for a float
        value = None
    problem = number_problem(ref) if isinstance(ref, str) and value is None else None
    if problem:
        raise ValueError(f"reference {ref!r} {problem}")
    if value is None or not math.isfinite(value):
        shown = repr(ref) if len(repr(ref)) <= 60 else repr(ref)[:57] + "..."
        raise ValueError(f"reference {shown} is not a {'number' if value is None else 'finite number'}")
    return value


def number_problem(text: str, lang: str = "en") -> str | None:
    """Why `text` holds a number that cannot be read unambiguously, or None: scientific notation, a fraction, or
    separators that `parse_number` refuses (`_ambiguous_separators`: where the comma is no decimal mark, a comma that
    does not group thousands, '2,5', '12,50'; anywhere, '1.2,5')."""
    if re.search(r"\d\s*[eE][+-]?\d", text):
        return "is in scientific notation, which is not read in outputs either (write the number)"
    if re.search(r"\d\s*/\s*\d", text):
        return "is not a number but a fraction (write it as a decimal number)"
    for m in re.finditer(r"\d[\d.,\u066b\u066c]*\d", _ascii_digits(text)):
        if _ambiguous_separators(m.group(), lang):
            if lang in COMMA_DECIMAL or not re.fullmatch(r"[\d,]+(?:\.\d+)?", m.group()):
                return f"is not a number as written: its separators admit no single reading ({m.group()!r})"
            return (f"is not a number as written: its comma groups no thousands ({m.group()!r}: a decimal comma "
                    "or a list?); write decimals with a point in this language")
    return None


def parse_cjk(text: str) -> int | None:
    """Simple CJK numerals: 七 -> 7, 十五 -> 15, 二十三 -> 23, 三百零五 -> 305, 两千 -> 2000."""
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in CJK_DIGITS:
            if digit is not None and digit != 0:
                return None  # 二三 is a sequence of digits, not a number: ambiguous
            digit = CJK_DIGITS[ch]
        elif ch in ("万", "萬"):
            section += digit or 0
            total += (section or 1) * 10_000
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * CJK_UNITS[ch]
            digit = None
    return total + section + (digit or 0)


def parse_with_multipliers(text: str, lang: str = "en") -> float | None:
    """Arabic digits as `parse_number` reads them, with CJK multipliers after them (`_multiplied`: `8万`, `1万8千`,
    `1亿2000万`); None for text that is not such a number."""
    parts = _MULTIPLIER_SPLIT.split(text)
    value = parse_number(parts[0], lang)
    if value is None or len(parts) == 1:
        return value
    return _multiplied(parts, lang)


def _multiplied(parts: list[str], lang: str) -> float | None:
    """The value of Arabic digits with CJK multipliers, split by `_MULTIPLIER_SPLIT` (digits, multiplier, ...,
    digits): 千 and 百 multiply within a section, 万 and 亿 close one (1万8千 = 18,000, 2千5百 = 2,500, 2千万 =
    20,000,000); a single digit after the last multiplier is a tenth of it (3万5 = 35,000, 2千5 = 2,500, as 三万五
    and 两千五). None where the multipliers do not fall in size (5百3千) or 千/百 has no digits."""
    total, section = 0.0, 0.0
    last_section, last_inner = math.inf, math.inf
    for digits, multiplier in zip(parts[0:-1:2], parts[1::2]):
        size = CJK_MULTIPLIERS[multiplier]
        part = parse_number(digits, lang) if digits else None
        if digits and part is None:
            return None
        if multiplier in _SECTION_MULTIPLIERS:
            if size >= last_section:
                return None
            total += (section + (part or 0.0)) * size
            section, last_section, last_inner = 0.0, size, math.inf
        else:
            if part is None or size >= last_inner:
                return None
            section += part * size
            last_inner = size
    rest = parse_number(parts[-1], lang) if parts[-1] else 0.0
    if rest is not None and len(parts[-1]) == 1:  # 3万5 is 3.5万 (三万五), not 30,005
        rest *= CJK_MULTIPLIERS[parts[-2]] / 10
    return None if rest is None else total + section + rest


def unreadable(text: str, lang: str) -> bool:
    """Whether `text`, a number `parse_with_multipliers` did not read, is one whose separators `parse_number` will
    not guess at (`_ambiguous_separators`) or whose CJK multipliers do not fall in size (`_multiplied`). Such a number
    is where an answer is, but unreadable: an extractor stops there (no answer) rather than skipping it for the next
    number in the text."""
    return bool(_MULTIPLIER_SPLIT.search(text)) or _ambiguous_separators(_separated(text), lang)
