"""Validators for one translated segment, each failing with a reason code.

numbers_changed, numbers_swapped, number_word_lost (a number the source writes as a word, missing),
placeholder_lost, structure_changed, formula_changed (a LaTeX formula's commands, variables or structure),
wrong_language, untranslated_part (a sentence left in English), length_ratio, question_lost, copied_source,
preamble and postscript (a translator's chatter before or after the translation), reasoning_left (a reasoning
model's unclosed `<think>`), empty; and notes that are counted, not refused (numbers_reordered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langmix import languages as langs
from langmix.evaluate import langid
from langmix.translate.chatter import SENTENCE_END, postscript, preamble, reasoning, sentences
from langmix.translate.structure import (PLACEHOLDER, TEMPLATE, formulas_preserved, math_spans, number_words_lost,
                                         numbers_preserved, numbers_reordered, numbers_swapped, prose,
                                         structure_preserved, templates_preserved, without_spans)

# Target/source length ratio bounds (characters). Scripts that pack more per character (CJK) run shorter.
LENGTH_BOUNDS: dict[str, tuple[float, float]] = {"zh": (0.12, 1.2), "ja": (0.15, 1.4)}
DEFAULT_BOUNDS = (0.4, 2.8)


# Question marks: Latin/Cyrillic/Indic '?', full-width '？' (zh, ja), Arabic '؟', Armenian '՞', Ethiopic '፧'.
_QUESTION_MARK = re.compile(r"[?？؟՞፧]")
# Languages that write no question mark: a question is a question word (Thai: how many, how much, what/how, where,
# yes-no particles, who, why) or an imperative ("จงคำนวณ", "calculate": what "Calculate ...?" becomes).
_QUESTION_WORDS = {"th": re.compile("กี่|ไร|ไหร่|ไหน|ไหม|หรือไม่|หรือเปล่า|ใด|ใคร|ทำไม|จง|คำนวณ")}


def question_lost(source: str, target: str, target_lang: str) -> bool:
    """Whether the translation asks fewer questions than the source (a dropped sentence is most often the question
    itself): fewer question marks, or, in a language that writes none, no question word at all."""
    asked = len(_QUESTION_MARK.findall(prose(source)))
    if not asked:
        return False
    found = len(_QUESTION_MARK.findall(prose(target)))
    if target_lang in _QUESTION_WORDS and not found:
        return not _QUESTION_WORDS[target_lang].search(target)
    return found < asked


_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|„[^“”\n]*[“”]|'[^'\n]*'|「[^」\n]*」")
# A sentence judged for English has this many letters outside the source's capitalised words (names: "Raymond y
# Samantha son primos." reads as English), and this share of them in words the source uses (an untranslated
# sentence keeps the source's words; a name- or loanword-heavy sentence does not: at most 0.74 in MGSM's human
# translations, "Il y a 10 cages de hamsters."). Measured on MGSM: no human translation has such a sentence (at 10
# letters either), and its final question replaced by the English one is caught in 2,236 of 2,263 pairs (the
# rest: questions of fewer letters, "How much will she spend?").
UNTRANSLATED_LETTERS = 12
UNTRANSLATED_SHARE = 0.8


def _english_looking(source: str, target: str) -> list[str]:
    """The target's sentences that may be left in the source's English: enough letters, mostly the source's words
    (without formulas, code and template placeholders, and quotes the source has verbatim: a title kept as is)."""
    target = without_spans(target, math_spans(target))
    target = TEMPLATE.sub(" ", _QUOTED.sub(lambda m: " " if m.group()[1:-1] in source else m.group(), prose(target)))
    names = {w for w in langs.WORD.findall(source) if w[0].isupper()}
    vocabulary = {w.casefold() for w in langs.WORD.findall(source)}
    out = []
    for sentence in SENTENCE_END.split(target):
        words = [w for w in langs.WORD.findall(sentence) if w not in names]
        letters = sum(len(w) for w in words)
        if letters >= UNTRANSLATED_LETTERS and \
                sum(len(w) for w in words if w.casefold() in vocabulary) >= UNTRANSLATED_SHARE * letters:
            out.append(" ".join(words))
    return out


def untranslated_part(source: str, target: str, target_lang: str) -> bool:
    """Whether a sentence of the translation is left in English: "...el huevo fresco de pato. How much in dollars
    does she make every day at the farmers' market?" passed, the whole text reading as Spanish. A sentence with
    enough letters, mostly in the source's words, that lingua reads as English rather than the target language."""
    candidates = _english_looking(source, target)
    return bool(candidates) and "en" in langid.detect(candidates, ["en", target_lang])


# Languages that mark no sentence end (Thai: a space), whose sentences cannot be counted.
_NO_SENTENCE_MARK = {"th"}


def number_word_lost(source: str, target: str, target_lang: str) -> bool:
    """Whether a sentence with a number written as a word was dropped ("She eats three for breakfast ... with
    four." gone: the length ratio stayed in bounds, and no number check sees number words): two of the source's
    number words (two to twelve) missing from the translation, in digits and in the target language's words, or
    one with a sentence fewer than the source. A single word missing alone is a translator's rewording, and human
    translations merge sentences (fr, te: 1 in 10 has a sentence fewer), so neither alone is refused."""
    lost = number_words_lost(source, target, target_lang)
    return len(lost) > 1 or (len(lost) == 1 and target_lang not in _NO_SENTENCE_MARK
                             and len(sentences(target)) < len(sentences(source)))


@dataclass(frozen=True)
class Check:
    numbers: bool = True
    language: bool = True
    structure: bool = False  # the segment holds JSON or fenced code, which must come back unchanged


_UNSET = object()


def validate(source: str, target: str, target_lang: str, languages: list[str], check: Check = Check(),
             lost_placeholders: list[int] | None = None, detected=_UNSET) -> list[str]:
    """Reason codes of every failed check (empty list = valid). `detected` passes a language already
    identified for `target` (the pipeline identifies a whole batch at once)."""
    if not target.strip():
        return ["empty"]
    reasons: list[str] = []
    if lost_placeholders or PLACEHOLDER.search(target) or not templates_preserved(source, target):
        reasons.append("placeholder_lost")  # a protected span, or a template placeholder or code span
    if check.numbers and not numbers_preserved(source, target, target_lang)[0]:
        reasons.append("numbers_changed")
    elif check.numbers and numbers_swapped(source, target, target_lang):
        reasons.append("numbers_swapped")
    if check.numbers and number_word_lost(source, target, target_lang):
        reasons.append("number_word_lost")
    if check.structure and not structure_preserved(source, target):
        reasons.append("structure_changed")
    if not formulas_preserved(source, target):
        reasons.append("formula_changed")  # a LaTeX formula's commands, variables or structure
    lo, hi = LENGTH_BOUNDS.get(target_lang, DEFAULT_BOUNDS)
    ratio = len(target) / max(1, len(source))
    if not lo <= ratio <= hi:
        reasons.append("length_ratio")
    if question_lost(source, target, target_lang):
        reasons.append("question_lost")
    if preamble(source, target):
        reasons.append("preamble")
    if postscript(source, target):
        reasons.append("postscript")
    if reasoning(source, target):
        reasons.append("reasoning_left")
    if target_lang != "en" and _normal(target) == _normal(source):
        reasons.append("copied_source")
    elif check.language and target_lang in languages:
        if detected is _UNSET:
            detected = langid.detect([prose(target)], detection_languages(languages, target_lang))[0]
        if detected is not None and detected != target_lang:
            reasons.append("wrong_language")
        elif untranslated_part(source, target, target_lang):
            reasons.append("untranslated_part")
    return reasons


def notes(source: str, target: str, target_lang: str) -> list[str]:
    """What a passing translation did that is counted but not refused: `numbers_reordered`, its numbers in another
    order than the source's (word order differs between languages: 5.0% of MGSM's human translations do it, 12% of
    the Bengali and Telugu; a swap between numbers before the same word fails as `numbers_swapped`)."""
    return ["numbers_reordered"] if numbers_reordered(source, target, target_lang) else []


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def detection_languages(languages: list[str], target_lang: str) -> list[str]:
    """Every language of the registry, not only the study's: with the study's alone, Chinese returned for
    Japanese, Hindi for Bengali or Indonesian for Swahili was judged the target language."""
    return sorted(set(langs.known_codes()) | set(languages) | {"en", target_lang})
