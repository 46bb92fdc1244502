"""Final-answer extraction for math outputs.

Two modes, reported separately: *strict* reads the number after the language's own answer phrase; *flexible*
reads the last number in the output. Python's `\\d` matches any Unicode decimal digit (Bengali, Telugu, Thai,
full-width...), and `int()` converts them, so native digits need no tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class MathVerdict:
    strict: float | None
    flexible: float | None
    strict_correct: bool
    flexible_correct: bool
    reason: str  # "ok", "no_answer_phrase", "no_number", "too_long", "wrong"


def parse_number(text: str) -> float | None:
    """'1,234' -> 1234, '29.00' -> 29, '৪২' -> 42; None if `text` is not a number."""
    cleaned = text.replace(",", "")
    try:
        digits = "".join(str(int(ch)) if ch.isdigit() else ch for ch in cleaned)
        return float(Decimal(digits))
    except (InvalidOperation, ValueError):
        return None


def extract_flexible(output: str) -> float | None:
    found = NUMBER.findall(output)
    return parse_number(found[-1]) if found else None


def extract_strict(output: str, answer_phrase: str) -> float | None:
    idx = output.rfind(answer_phrase) if answer_phrase else -1
    if idx < 0:
        return None
    match = NUMBER.search(output, idx + len(answer_phrase))
    return parse_number(match.group()) if match else None


def score_math(output: str, answer: float, answer_phrase: str) -> MathVerdict:
    """Score one output against the reference answer. Never raises: bad outputs are wrong, with a reason."""
    if len(output) > MAX_OUTPUT_CHARS:
        return MathVerdict(None, None, False, False, "too_long")
    strict = extract_strict(output, answer_phrase)
    flexible = extract_flexible(output)
    strict_ok = strict is not None and abs(strict - float(answer)) < 1e-9
    flex_ok = flexible is not None and abs(flexible - float(answer)) < 1e-9
    if flexible is None:
        reason = "no_number"
    elif strict is None:
        reason = "no_answer_phrase"
    else:
        reason = "ok" if strict_ok else "wrong"
    return MathVerdict(strict, flexible, strict_ok, flex_ok, reason)
