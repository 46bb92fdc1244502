"""The checker's two rule sets and the rules where `multilingual` is more lenient than `bfcl` (`LENIENCIES`; the
rules in words are in `ast_check`'s docstring): how strings are standardised (`nfkc`, `casefold`,
`strip_quotes_whitespace`), how function names compare (`name_case`, `name_separator`), and
`user_language_free_text`, with its whole-word test of a value copied from the request (`_copied_span`, which
language ID shares). `_Context` carries the rule set and the request through one check.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Callable, Literal

import regex

from langmix.evaluate import call_parse
from langmix.languages import LETTER

Mode = Literal["bfcl", "multilingual"]
MODES: tuple[str, ...] = ("bfcl", "multilingual")
LENIENCIES: dict[str, tuple[str, ...]] = {
    "bfcl": (),
    "multilingual": ("nfkc", "casefold", "strip_quotes_whitespace", "name_case", "name_separator",
                     "optimal_matching", "user_language_free_text", "leading_text"),
}
_BFCL_STRIP = re.compile(r"[ ,./\-_*^]")
# multilingual: whitespace, quotes and `, . / - _ * ^` are removed, but for a '.' or '-' that gives a number its
# value: a '.' between digits (34.0522, 192.168.11.33), a '-' or '.' before a digit that follows no letter or digit
# (a minus sign, a leading point: -118.2437, .5). BFCL removes those too, so it takes '340522, -118.2437' for
# '34.0522, -118.2437'. The dots of a day.month.year date (16.08.2022, as German or Russian write it) separate like
# the '-' and '/' of 2022-08-16 and 16/08/2022, and are removed as theirs are.
_WIDE_STRIP = re.compile(r"[\s,/_*^'\"]+|\.(?!\d)|(?<=" + LETTER + r")\.|-(?!\d)|(?<=[^\W_])-")
# A decimal comma (de, es, fr, ru write 3,5 for 3.5): a ',' between a digit and one or two digits reads as the
# decimal point, so "3,5 km" is "3.5 km" (removing it, as other commas are, made it 35: review); a comma before three
# digits groups thousands (1,000) and one before four (Jan.1,2022, BFCL's dates) separates, and both are removed.
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")
_DOTTED_DATE = re.compile(r"(?<![\d.])(?:\d{1,2}\.\d{1,2}\.\d{4}|\d{4}\.\d{1,2}\.\d{1,2})(?![\d.])")
_CONSTRAINED_DESCRIPTION = re.compile(r"format|%[YmdHMS]|yyyy|\bdate|\btime|\bcode|\bid\b|token|e-?mail|url|phone|"
                                      r"number", re.IGNORECASE)
_CONSTRAINED_VALUE = re.compile(r"^[\d\s.,:/+\-%]+$|@|://|^\S+$")


@dataclass(frozen=True)
class _Context:
    """What one check needs besides the call: the rule set and the translated request, if any."""

    lenient: bool
    is_wrong_language: Callable[[str, str], bool] | None = None
    request: str | None = None
    verbatim: Collection[str] = ()
    language: str | None = None  # the user's language (the request's); the free-text leniency needs a non-English one


def standardise(value: str, lenient: bool) -> str:
    """BFCL's string standardisation, or (lenient) the multilingual one: NFKC, all whitespace and quotes
    removed too, but a number's decimal point (or decimal comma, `_DECIMAL_COMMA`) and minus sign kept
    (`_WIDE_STRIP`), casefold."""
    if lenient:
        text = _DOTTED_DATE.sub(lambda m: m.group().replace(".", "/"), unicodedata.normalize("NFKC", value))
        text = _DECIMAL_COMMA.sub(".", text)
        return _WIDE_STRIP.sub("", text).casefold()
    return _BFCL_STRIP.sub("", value).lower().replace("'", '"')


def normalise_string(value: str) -> str:
    return standardise(value, True)


def names_match(got: str, want: str, lenient: bool) -> bool:
    if not lenient:
        return got == want
    return call_parse.normal_name(got) == call_parse.normal_name(want)


def _free_text_ok(key: str, name: str, value: Any, options: list[Any], prop: dict[str, Any], ctx: _Context) -> bool:
    """The `user_language_free_text` leniency (its rule in `ast_check`'s docstring)."""
    canonical = next((o for o in options if isinstance(o, str) and o), None)
    if not (ctx.lenient and ctx.request and isinstance(value, str) and canonical) or f"{name}.{key}" in ctx.verbatim:
        return False
    if any(k in prop for k in ("enum", "format", "pattern")) or \
            _CONSTRAINED_DESCRIPTION.search(str(prop.get("description", ""))) or \
            _CONSTRAINED_VALUE.search(canonical.strip()) or canonical in ctx.request:
        return False
    got, want = standardise(value, True), standardise(canonical, True)
    if not (ctx.language and ctx.language.split("-")[0].lower() != "en"):
        return False  # an English request has no user-language form of an English value
    shortest = 0.2 if _UNSPACED.search(value) else 0.5  # CJK and Thai take fewer characters than English
    return (shortest * len(want) <= len(got) <= 3 * len(want) and _copied_span(value, ctx.request)
            and _names_agree(value, canonical))


def _fold(word: str) -> str:
    """A word without accents, casefolded (Ángeles -> angeles)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)).casefold()


def _names_agree(value: str, canonical: str) -> bool:
    """A canonical value that reads as a name (a capitalised word past the first: "Los Angeles, CA", "Conference
    Room A") keeps one of its words, accents aside, in a user-language form written in the same script
    ("Los Ángeles"; not "comida vegana"). Free text (a message body) and a form in another script pass."""
    from langmix.evaluate.langid import script_of  # lingua loads with langid: only where a name is checked

    words = regex.findall(r"\p{L}[\p{L}\p{M}]*", canonical)
    if not any(w[:1].isupper() for w in words[1:]) or script_of(value) != script_of(canonical):
        return True
    mine = {_fold(w) for w in regex.findall(r"\p{L}[\p{L}\p{M}]*", value)}
    return any(_fold(w) in mine for w in words)


# Scripts written without spaces between words: a copied span may begin or end next to a letter of them.
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")


def _spaced_letter(ch: str) -> bool:
    """A letter (or a combining mark: Bengali and Telugu vowel signs are marks) of a script with spaces."""
    return (ch.isalpha() or unicodedata.category(ch).startswith("M")) and not _UNSPACED.match(ch)


def _copied_span(value: str, request: str) -> bool:
    """Whether `value` occurs in `request` as whole words, punctuation and spacing aside (both NFKC, casefolded,
    punctuation dropped, whitespace collapsed): no letter or mark of a spaced script directly before or after it,
    so "Find" is not a span of "Finding ...", nor "of" of "office"."""
    def prepare(text: str) -> str:
        return " ".join(_PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())

    want, text = prepare(value), prepare(request)
    start = text.find(want) if want else -1
    while start != -1:
        before = text[start - 1] if start else " "
        end = start + len(want)
        after = text[end] if end < len(text) else " "
        if not (_spaced_letter(want[0]) and _spaced_letter(before)) and \
                not (_spaced_letter(want[-1]) and _spaced_letter(after)):
            return True
        start = text.find(want, start + 1)
    return False


_PUNCTUATION = regex.compile(r"[\p{P}\p{S}]+")
