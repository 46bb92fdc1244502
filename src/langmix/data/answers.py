"""Reading the reference answer of a math item from user data, refusing what cannot be read unambiguously.

An answer is a finite number: a JSON/Parquet number, a plain number as written in the item's language, a GSM8K
answer ending in `#### n`, or a worked solution. A worked solution's answer is the number after the language's
answer phrase ("The answer is 8. (Note: ... 2024)" is 8); without a phrase, its last number, which must end it
("... with his 2 sisters." is refused). NaN and infinities, scientific notation, fractions and (where the comma is
no decimal mark) commas that group no thousands are refused with a DataFormatError naming the file and line.
"""

from __future__ import annotations

import logging
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from langmix import languages as langs
from langmix.data.files import DataFormatError
from langmix.evaluate.math import extract_flexible, extract_strict, phrase_pattern
from langmix.evaluate.number_reading import number_problem, parse_number

log = logging.getLogger(__name__)

CALCULATOR = re.compile(r"<<[^>]*>>")
# A number as written, with what would make it ambiguous (an exponent, a fraction's denominator) attached.
_NUMBERISH = re.compile(r"[-+]?\d(?:[\d.,\u00a0\u202f\u2009 ]*\d)?(?:\s*[eE][+-]?\d+|\s*/\s*\d+)?")
_AFTER_LAST = re.compile(r"[\s.。।!)*\]%$€£¥₹]*")  # what may follow the final number of a worked solution


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def finite(path: Path | str, lineno: int | None, value: float) -> float:
    """`value`, refused unless finite (NaN or an infinity would become a target such as 'The answer is nan.')."""
    if not math.isfinite(value):
        raise DataFormatError(path, lineno, f"answer {value} is not a finite number")
    return value


def read_number(path: Path | str, lineno: int | None, text: str, lang: str = "en") -> float:
    """A plain number as written in `lang`; anything else is a DataFormatError saying why."""
    value = parse_number(text, lang)
    if value is None:
        raise DataFormatError(path, lineno, f"answer {_shown(text.strip())} "
                              f"{number_problem(text, lang) or 'is not a number'}")
    return finite(path, lineno, value)


def gsm8k_answer(path: Path | str, lineno: int, text: str, keep_calculator: bool,
                 lang: str = "en") -> tuple[str, float]:
    """Split a GSM8K answer into (reasoning, final number). More than one '####' is refused, naming them: which
    number is the answer would be a guess."""
    if "####" not in text:
        raise DataFormatError(path, lineno, "answer has no '#### <number>' line")
    if text.count("####") > 1:
        marked = [line.strip() for line in text.splitlines() if "####" in line]
        raise DataFormatError(path, lineno, f"answer has {text.count('####')} '####' marks "
                              f"({', '.join(_shown(m) for m in marked[:3])}{' ...' if len(marked) > 3 else ''}): "
                              "a GSM8K answer ends with one '#### <number>' line")
    reasoning, final = text.rsplit("####", 1)
    value = read_number(path, lineno, final, lang)
    if not keep_calculator:
        reasoning = CALCULATOR.sub("", reasoning)
    return reasoning.strip(), value


def _check_token(path: Path | str, lineno: int, text: str, token: str, lang: str) -> None:
    problem = number_problem(token, lang)
    if problem:
        raise DataFormatError(path, lineno, f"answer {_shown(text)}: its final number {token!r} {problem}")


def _worked(path: Path | str, lineno: int, text: str, lang: str) -> float:
    """The answer of a worked solution: after the language's answer phrase, else its last number, at its end."""
    phrases = tuple(langs.answer_phrases(lang)) or (langs.answer_phrase("en"),)
    value = extract_strict(text, phrases, lang)
    if value is not None:
        pattern = phrase_pattern(phrases)
        last = list(pattern.finditer(text))[-1] if pattern else None
        token = _NUMBERISH.search(text, last.end()) if last else None
        if token:
            _check_token(path, lineno, text, token.group(), lang)
        return finite(path, lineno, value)
    tokens = list(_NUMBERISH.finditer(text))
    if not tokens:
        raise DataFormatError(path, lineno, f"answer {_shown(text)} is not a number (nor a solution ending in one)")
    _check_token(path, lineno, text, tokens[-1].group(), lang)
    if not _AFTER_LAST.fullmatch(text, tokens[-1].end()):
        raise DataFormatError(path, lineno, f"answer {_shown(text)}: a worked solution without the answer phrase "
                              f"{phrases[0]!r} whose last number does not end it; end it with "
                              f"'{phrases[0]} <number>.' or '#### <number>'")
    value = extract_flexible(text, lang)
    if value is None:
        raise DataFormatError(path, lineno, f"answer {_shown(text)} is not a number (nor a solution ending in one)")
    return finite(path, lineno, value)


def read_solution(path: Path | str, lineno: int, answer: Any, lang: str) -> tuple[str | None, float]:
    """(worked solution or None, answer) of a number, a GSM8K-style answer (`#### n`), a number written in `lang`
    ('1.000' in de is 1000) or a worked solution."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return None, finite(path, lineno, float(answer))
    if not isinstance(answer, str):
        raise DataFormatError(path, lineno, f"answer {answer!r} is neither a number nor text")
    if "####" in answer:
        return gsm8k_answer(path, lineno, answer, keep_calculator=False, lang=lang)
    value = parse_number(answer, lang)
    if value is not None:
        return None, finite(path, lineno, value)
    return answer.strip(), _worked(path, lineno, answer.strip(), lang)


def write_number(value: float, lang: str) -> str:
    """`value` written in `lang` so that the language's own reading (`parse_number`, which strict and flexible
    extraction use) gives back exactly `value`: an integer without separators ('1234567', '-5'); a decimal in
    positional notation with the language's decimal mark (`languages.decimal_mark`: '0.5' in en, '0,5' in de).
    Where that would read as another number, a trailing zero is added: de/es/fr/ru read '1,125' (and '1.125') as
    1125, a comma before three digits grouping thousands as models write them, so 1.125 is written '1,1250'.
    A ValueError for a value that is not finite."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} as an answer")
    if value.is_integer():
        return str(int(value))
    text = format(Decimal(repr(value)), "f")  # the shortest exact decimal, never scientific notation
    if langs.decimal_mark(lang) == ",":
        text = text.replace(".", ",")
    for candidate in (text, text + "0"):
        if parse_number(candidate, lang) == value:
            return candidate
    raise ValueError(f"{value} has no unambiguous way to be written in {lang!r}")  # a test covers the registry


_ENGLISH_FALLBACK_WARNED: set[str] = set()


def target_answer_phrase(lang: str) -> str:
    """The phrase a training target in `lang` states its answer with: the registry's canonical phrase, or, for a
    language without one (ar, hi, ko, id, yo), English's, with a warning once per language (strict scoring then
    accepts the English phrase for that language's items, since each item records its phrase)."""
    phrase = langs.answer_phrase(lang)
    if not langs.answer_phrases(lang) and lang not in _ENGLISH_FALLBACK_WARNED:
        _ENGLISH_FALLBACK_WARNED.add(lang)
        log.warning("%s has no answer phrase in the language registry, so its math targets use the English phrase "
                    "%r; add a sourced phrase for %s to ANSWER_PHRASE_VARIANTS in langmix/languages.py", lang,
                    phrase, lang)
    return phrase


def answer_line(value: float, lang: str, phrase: str | None = None) -> str:
    """The final line of a math target: '<phrase> <number>.' with the number as `write_number` writes it in
    `lang` ('Die Antwort lautet 0,5.'); `phrase` defaults to `target_answer_phrase(lang)`."""
    return f"{target_answer_phrase(lang) if phrase is None else phrase} {write_number(value, lang)}."



def check_repeated_questions(rows: list[tuple[Path | str, int | None, str, str, str, float]],
                             counts_in: str = "a mixture") -> None:
    """Items (path, line, id, language, question, answer) whose question is given twice in one language (compared
    with whitespace collapsed): with another answer, a DataFormatError naming both ids and lines (one of the two
    targets is wrong); with the same answer, one warning counting them (each copy counts in `counts_in`: a
    mixture for training data, the scores for an evaluation set). A line of None: the file's, not known."""
    first: dict[tuple[str, str], tuple[Path | str, int, str, float]] = {}
    repeats: list[str] = []
    for path, lineno, item_id, lang, question, value in rows:
        key = (lang, " ".join(question.split()))
        if key not in first:
            first[key] = (path, lineno, item_id, value)
            continue
        path0, line0, id0, value0 = first[key]
        if value0 != value:
            where = f"{path0}:{line0}" if line0 is not None else str(path0)
            raise DataFormatError(path, lineno, f"item {item_id!r} repeats the {lang} question of {id0!r} "
                                  f"({where}) with another answer ({write_number(value, lang)} vs "
                                  f"{write_number(value0, lang)}); one of them is wrong: fix or remove it")
        repeats.append(f"{item_id} = {id0}")
    if repeats:
        log.warning("%d questions repeat an earlier one with the same answer (each copy counts in %s): %s%s",
                    len(repeats), counts_in, "; ".join(repeats[:5]), " ..." if len(repeats) > 5 else "")
