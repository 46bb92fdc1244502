"""Final-answer extraction for math outputs.

Two modes, reported separately: *strict* reads the first number after the last occurrence of one of the
language's answer phrases that has one (the registry's `answer_phrases`: the MGSM exemplars' phrases and
documented variants, see `langmix.languages`; a closing colon may carry Markdown emphasis, a closing dash may be
an em or en dash or a hyphen); *flexible* reads the last number in the output. Extraction is linear in the
output's length; only outputs over 1 MB are refused. Numbers are normalised before comparison: native and
full-width digits (Python's `\\d` matches every Unicode decimal digit and `int()` converts it), the minus sign
U+2212, thousands separators by the language's convention (`1,234`; `1.234` in de/es; `1 234` everywhere), both
separators where their order allows one reading (`70,000.00` and `1.234,5` in every language), Arabic separators
(U+066C thousands, U+066B decimal: `٧٠٬٠٠٠`, `١٨٫٥`), decimals (`29.00` == 29), currency and unit symbols around
the number, CJK multipliers with Arabic digits (`1万2000` = 12,000, `3万5` = 35,000, `8千` = 8,000, `1万8千` = 18,000,
`3百` = 300) and simple CJK numerals (`二十三`), except at the start of words that state no quantity (一共 "in all",
一次 "once", 十分 "very") or right after Arabic digits (the 千 of `5千克`, 5 kg). A minus counts only where no digit or
Latin letter precedes it (`20-25` is a range); superscript and subscript digits (`m²`) are dropped.

Scientific notation is not a number here, in outputs or in references: `1e2` in an output reads as the numbers 1
and 2 (as `e` elsewhere splits numbers), so `parse_number`, which also reads references and the loaders' answers,
refuses `1e3` (and `1_000`, `inf`, `nan`), rather than accept a reference that no output could match as written.
A reference given as a JSON number (`1e3` unquoted is 1000) is a number whatever its notation.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from langmix import languages as langs

log = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 1_000_000  # only pathological sizes are refused; a rambling 2,000-token answer is scored
MAX_NUMBER_CHARS = 100  # a longer run of digits is not read as a number

# Languages whose decimal mark is a comma (so "." or a space groups thousands): the registry's table, which number
# writing (`data.answers.write_number`) reads too.
COMMA_DECIMAL = langs.COMMA_DECIMAL
CJK_NUMERAL_LANGUAGES = {"zh", "ja"}

_SPACES = "\u00a0\u202f\u2009 "


# A number: a minus only where no digit or Latin letter precedes it (`20-25` is a range, `COVID-19` a name; `答案是-5`
# is -5), digits with `.`/`,`, Arabic separators and spaces (before 3 digits) inside, then CJK multipliers each
# optionally followed by more digits (`8万`, `1万2000`, `1亿2000万`, `8千`, `1万8千`, `3百`), but not the 千 of a metric
# unit (`5千克` is 5 kg, `3千米` 3 km) nor the 百 of 百分 (percent) or 百米. Spaces group thousands in every
# language: Spanish writes `80 000`.
_NUMBER = re.compile(r"(?:(?<![\dA-Za-z])-)?(?:\d+|(?<![\d.,\u066b\u066c])[.\u066b](?=\d))"
                     r"(?:(?:[.,\u066b\u066c]|[" + _SPACES + r"](?=\d{3}(?!\d)))?\d+)*"
                     r"(?:\s*(?:[億亿万萬]|千(?![克米瓦卡焦赫伏帕兆])|百(?![分米]))\d*)*")
_MULTIPLIER_SPLIT = re.compile(r"\s*([万萬億亿千百])")
# Superscript and subscript digits are exponents and indices (`m²`, `H₂O`), never an answer; NFKC would make them
# digits. U+2212 is the minus sign, which NFKC leaves alone.
_DROP_BEFORE_NFKC = str.maketrans({**{ch: None for ch in "⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉"}, "\u2212": "-"})
_CJK_MULTIPLIER = {"万": 10_000, "萬": 10_000, "億": 100_000_000, "亿": 100_000_000, "千": 1000, "百": 100}
_SECTION_MULTIPLIERS = frozenset("万萬億亿")  # each closes a section: 2千万 is 2000 x 10,000
_CJK_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9}
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "萬": 10_000}
_NUMBER_CHARS = frozenset(".,-\u066b\u066c" + _SPACES + "".join(_CJK_MULTIPLIER) + "".join(_CJK_DIGITS)
                          + "".join(_CJK_UNITS))
_CJK_NUMBER = re.compile("[" + "".join(_CJK_DIGITS) + "".join(_CJK_UNITS) + "]+")
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
    for ch in _SPACES:
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
    parts = _MULTIPLIER_SPLIT.split(text)  # 1亿2000万 -> ['1', '亿', '2000', '万', '']: 1e8 + 2000e4
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
        size = _CJK_MULTIPLIER[multiplier]
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
        rest *= _CJK_MULTIPLIER[parts[-2]] / 10
    return None if rest is None else total + section + rest


def _ambiguous(text: str, lang: str) -> bool:
    """Whether `text`, a number `_value` did not read, is one whose separators `parse_number` will not guess at
    (`_ambiguous_separators`) or whose CJK multipliers do not fall in size (`_multiplied`). Such a number is where an
    answer is, but unreadable: an extractor stops there (no answer) rather than skipping it for the next number in
    the text."""
    return bool(_MULTIPLIER_SPLIT.search(text)) or _ambiguous_separators(_separated(text), lang)


def _values(matches: Iterable[tuple[int, str, bool]], lang: str) -> Iterator[float | None]:
    """Parsed values of `matches` (in order), skipping a CJK numeral inside an Arabic match (the 万 of `8万`) and
    other text that is no number; None for a number whose separators are ambiguous (`_ambiguous`)."""
    covered_until = -1
    for start, text, is_cjk in matches:
        value = _value(text, is_cjk, lang, after_multiplier=is_cjk and start < covered_until)
        if not is_cjk:
            covered_until = start + len(text)
        if value is not None:
            yield value
        elif not is_cjk and _ambiguous(text, lang):
            yield None


def numbers(output: str, lang: str = "en", cjk: bool = True) -> list[float]:
    """Every readable number in `output`, in order (Arabic, native or full-width digits, and CJK numerals unless
    `cjk=False`)."""
    return [v for v in _values(_number_matches(output, lang, cjk), lang) if v is not None]


def first_number(text: str, lang: str = "en") -> float | None:
    """The first number in `text`; stops reading at it (None where it is ambiguous as written: `_ambiguous`)."""
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
            if value is None and _ambiguous(arabic[i + 1].group(), lang):
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
    with no phrase of its own in the registry (ar, hi, ko, id, yo) accepts the item's phrase, else English's
    canonical one (what its training targets are written with, `data.answers.target_answer_phrase`); where that
    is an English phrase, a warning says so once per language, whichever path scores (a study, `langmix score`,
    re-scoring): its strict accuracy counts answers stated in English's phrase. No phrase is made up for it."""
    own = langs.answer_phrases(lang)
    if own:
        return tuple(dict.fromkeys(([answer_phrase] if answer_phrase else []) + list(own)))
    phrase = answer_phrase or langs.answer_phrase(lang)
    english = {p.casefold() for p in langs.answer_phrases("en")}
    if phrase.strip().casefold() in english and lang not in _ENGLISH_FALLBACK_WARNED:
        _ENGLISH_FALLBACK_WARNED.add(lang)
        log.warning("%s has no answer phrase in the language registry, so strict math scoring accepts only the "
                    "English phrase %r in its outputs (its strict accuracy counts answers stated in English's phrase); "
                    "add a sourced phrase for %s to ANSWER_PHRASE_VARIANTS in langmix/languages.py", lang, phrase,
                    lang)
    return (phrase,)


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
