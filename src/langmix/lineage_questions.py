"""What the lineage check (`langmix.lineage`) compares: an example's question, the user-authored turns of its
conversation, and text normalised for comparison.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from typing import NamedTuple

import regex

from langmix.data.api_data import TOOL_RESULT_STARTS, is_tool_result
from langmix.records import Example

# Unicode punctuation (categories P*) as the `regex` module's Unicode tables define it: 3x the speed of a
# per-character `str.translate`. Its tables are newer than Python 3.11's `unicodedata` (Unicode 14): 41 recently
# assigned punctuation marks (Balinese, Kawi, ...) count as punctuation, which Python's tables call unassigned.
_PUNCTUATION = regex.compile(r"\p{P}+")


def _normalise_text(text: str) -> str:
    if not text.isascii():  # ASCII text is its own NFKC form
        text = unicodedata.normalize("NFKC", text)
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


_WORD_FORMS: dict[str, str] = {}  # whitespace-separated word -> its normalised form ('' if only punctuation)
# Bounded at 250k words: ~50 MB, 73 MB for 32-character CJK words (measured); cleared when full, since words are
# Zipf-distributed and the common ones return at once.
_WORD_FORMS_MAX = 250_000
_WORD_FORM_MAX_CHARS = 32  # longer "words" (a CJK sentence has no spaces) are normalised, not remembered


def _word_form(word: str) -> str:
    form = _normalise_text(word)
    if len(word) <= _WORD_FORM_MAX_CHARS:
        if len(_WORD_FORMS) >= _WORD_FORMS_MAX:
            _WORD_FORMS.clear()
        _WORD_FORMS[word] = form
    return form


def normalise_question(text: str) -> str:
    """NFKC, casefold, punctuation -> space, whitespace collapsed: 'How  many?' and 'how many' compare equal.

    Computed word by word (split at whitespace), each word's form remembered: no step crosses whitespace (a
    whitespace character composes with nothing, has combining class 0 and normalises to whitespace; casefolding
    and the punctuation pass go character by character), so the result equals normalising the whole text, which
    tests check for every code point. 2-3x faster on a corpus, whose words repeat."""
    words = text.split()
    forms = _WORD_FORMS
    try:
        normalised = [forms[w] for w in words]
    except KeyError:
        normalised = [forms[w] if w in forms else _word_form(w) for w in words]
    return " ".join(normalised) if "" not in normalised else " ".join(w for w in normalised if w)


class Questions(NamedTuple):
    """Examples' questions as the check compares them: per example, its user-authored turns stripped (`raw`) and
    normalised (`normal`), empty ones left out; `text`, the normalised turns joined, for the n-grams. A training
    example's `raw`/`normal` hold every such turn, few-shot exemplars too (an evaluation question seen as an
    exemplar was seen); an evaluation example's hold its question only, as does each side's `text` (a math
    evaluation item's question is its last user turn, whether or not its exemplars are marked with `shots`)."""

    raw: list[tuple[str, ...]]
    normal: list[tuple[str, ...]]
    text: list[str]


def question_turns(examples: list[Example], evaluation: bool) -> Questions:
    """The questions of training examples, or (`evaluation`) of evaluation examples (see `Questions`)."""
    turns = Questions([], [], [])
    raw_turns, normal_turns, texts = turns
    for ex in examples:
        users = [m["content"] for m in ex.messages if m["role"] == "user"]
        if len(users) == 1 and "shots" not in ex.reference:  # most examples: one question
            raw = users[0].strip()
            if not raw.startswith(TOOL_RESULT_STARTS):
                normal = normalise_question(raw)
                raw_turns.append((raw,) if raw else ())
                normal_turns.append((normal,) if normal else ())
                texts.append(normal)
                continue
        first = ex.exemplar_messages()  # messages after a system message that are exemplars
        if first and ex.messages[0]["role"] == "system":
            first += 1
        raws: list[str] = []
        normals: list[str] = []
        exemplars = 0
        for i, m in enumerate(ex.messages):
            if m["role"] == "user" and not is_tool_result(m["content"]):
                raws.append(m["content"].strip())
                normals.append(normalise_question(m["content"]))
                exemplars += i < first
        if evaluation and ex.task == "math":  # one question, its last turn: earlier ones are exemplars, marked
            exemplars = max(exemplars, len(normals) - 1)  # (`shots`) or written inline without it
        question = tuple(n for n in normals[exemplars:] if n)
        raw_turns.append(tuple(r for r in raws[exemplars if evaluation else 0:] if r))
        normal_turns.append(question if evaluation else tuple(n for n in normals if n))
        texts.append(" ".join(question))
    return turns


def contained(turns: tuple[str, ...], table: dict[tuple[str, ...], Example],
              lengths: dict[str, tuple[int, ...]]) -> Example | None:
    """The evaluation example of `table` whose question is consecutive turns of `turns`: the first from the
    earliest turn, the longest question there (`lengths`: a first turn -> the lengths of the questions that start
    with it, longest first)."""
    found = table.get(turns)  # the whole: the longest from the first turn
    if found is not None or len(turns) < 2:
        return found
    for i, first in enumerate(turns):
        for n in lengths.get(first, ()):
            if i + n <= len(turns):
                found = table.get(turns[i:i + n])
                if found is not None:
                    return found
    return None


def first_turn_lengths(table: dict[tuple[str, ...], Example]) -> dict[str, tuple[int, ...]]:
    """A first turn -> the lengths of the questions of `table` that start with it, longest first (`contained`)."""
    lengths: dict[str, set[int]] = defaultdict(set)
    for question in table:
        lengths[question[0]].add(len(question))
    return {first: tuple(sorted(ns, reverse=True)) for first, ns in lengths.items()}
