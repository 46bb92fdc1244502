"""Language registry: the languages a study can name, with the facts the analysis needs.

Resource groups follow the MGSM paper's split into high-resource and underrepresented languages
(Shi et al., 2022, "Language Models are Multilingual Chain-of-Thought Reasoners", arXiv:2210.03057, which groups
bn, th, sw, te as underrepresented); languages outside MGSM follow the Joshi et al. (2020) "State and Fate of
Linguistic Diversity" taxonomy (classes 4-5 -> high, 0-3 -> low). URIEL codes are ISO 639-3 as URIEL uses them
(macro-languages mapped to the individual language URIEL indexes, e.g. sw -> swh, zh -> cmn).

Answer phrases (the one place they live; strict math scoring, the synthetic templates, the MGSM loader and the
translation pipeline all read them from here): each MGSM language's tuple starts with the phrases its MGSM
few-shot exemplars use (Shi et al., 2022, arXiv:2210.03057, `exemplars.py`), most frequent first: that first
phrase is the canonical one that training targets are written with. German's exemplars write "Die Antwort
lautet" seven times and "Die Antwort ist" once, so both are exemplar phrases, "lautet" first. After the exemplar
phrases come the documented variants (`ANSWER_PHRASE_VARIANTS`): short, common ways of stating the answer in the
same language that models write, mostly the colon form ("Answer:", "Ответ:"). Strict scoring accepts exactly
these phrases, so "strict" keeps meaning "the model stated its answer with the language's answer phrase".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import langcodes

from langmix.errors import UserInputError


# A word: a run of letters in any script (`living_room` is two words, `Lagos` one, digits are none). The one
# definition, for language ID (evaluate/langid.py) and the translation checks (translate/).
LETTER = r"[^\W\d_]"  # a letter of any script (a word character that is no digit or underscore)
WORD = re.compile(LETTER + "+")


@dataclass(frozen=True)
class Language:
    """One registry entry. `code` is the canonical BCP-47 language subtag."""

    code: str
    name: str
    script: str
    resource: str  # "high" or "low"
    family: str
    uriel: str
    answer_phrases: tuple[str, ...] = ()  # exemplar phrase(s) first (the first is canonical), then variants

    @property
    def answer_phrase(self) -> str:
        """The canonical answer phrase (the MGSM exemplars' most frequent one); "" for a language without one."""
        return self.answer_phrases[0] if self.answer_phrases else ""


# The phrases MGSM's exemplars use before the final number, per language, most frequent first (counted over the
# 8 exemplars of MGSM's `exemplars.py`; a test re-derives them from ../shared/data/mgsm/exemplars.json).
MGSM_EXEMPLAR_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("The answer is",), "es": ("La respuesta es",), "fr": ("La réponse est",),
    "de": ("Die Antwort lautet", "Die Antwort ist"), "ru": ("Ответ —",), "zh": ("答案是",), "ja": ("答えは",),
    "th": ("คำตอบคือ",), "sw": ("Jibu ni",), "bn": ("উত্তর হল",), "te": ("సమాధానం",),
}

# Variants models commonly write besides the exemplar phrase. Matching treats any run of whitespace in a phrase
# as any whitespace, and a colon as optionally preceded by whitespace and written ":" or "：" (so "Réponse:"
# also covers the French "Réponse :"); matching is case-insensitive and finds a phrase inside a longer one.
# Every MGSM language accepts the kinds of forms English does: its exemplar phrase ("The answer is 18"), that
# phrase with "final" ("The final answer is 18"), the colon form ("Answer: 18") and the colon form with "final"
# ("Final answer: 18", which "Answer:" finds inside it). Where the language puts "final" after "answer" (es, fr, th,
# sw), the final forms are phrases of their own; where before it (de, ru, zh, ja, bn, te), the plain phrase finds
# them. A test writes the four forms in each MGSM language.
ANSWER_PHRASE_VARIANTS: dict[str, tuple[str, ...]] = {
    "en": ("The final answer is", "Answer:"),
    "es": ("La respuesta final es", "Respuesta:", "Respuesta final:"),
    "fr": ("La réponse finale est", "Réponse:", "Réponse finale:"),
    "de": ("Die endgültige Antwort lautet", "Die endgültige Antwort ist", "Antwort:"),  # both exemplar phrases
    "ru": ("Ответ:", "Ответ –"),  # the colon form, and an en dash for the exemplars' em dash
    "zh": ("答案:", "答案为"),  # 答案为 ("the answer is", 为 for 是)
    "ja": ("答え:",),
    "th": ("คำตอบสุดท้ายคือ", "คำตอบ:", "คำตอบสุดท้าย:"),  # สุดท้าย ("final") follows คำตอบ
    "sw": ("Jibu la mwisho ni", "Jibu:", "Jibu la mwisho:"),  # la mwisho ("final") follows Jibu
    "bn": ("উত্তর:",),
    "te": ("జవాబు",),  # the other common word for "answer", written as the exemplars write సమాధానం: no colon
}
# No variant contains another phrase of its language (a test checks it): "Final answer:" would add nothing to
# "Answer:", "最终答案是" nothing to "答案是", "উত্তর হলো" nothing to "উত্তর হল".

# Languages whose decimal mark is the comma ("2,5"; a point or a space groups thousands). Number reading
# (`evaluate.number_reading.parse_number`) and number writing (`data.answers.write_number`) both take it from here,
# so a training target is written the way its language's scorer reads it. `it` and `pt` are outside the registry, but
# a score may be asked for them.
COMMA_DECIMAL: frozenset[str] = frozenset({"de", "es", "fr", "ru", "it", "pt", "id"})


def _phrases(code: str) -> tuple[str, ...]:
    return MGSM_EXEMPLAR_PHRASES.get(code, ()) + ANSWER_PHRASE_VARIANTS.get(code, ())


_REGISTRY: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("en", "English", "Latn", "high", "Indo-European", "eng", _phrases("en")),
        Language("es", "Spanish", "Latn", "high", "Indo-European", "spa", _phrases("es")),
        Language("fr", "French", "Latn", "high", "Indo-European", "fra", _phrases("fr")),
        Language("de", "German", "Latn", "high", "Indo-European", "deu", _phrases("de")),
        Language("ru", "Russian", "Cyrl", "high", "Indo-European", "rus", _phrases("ru")),
        Language("zh", "Chinese", "Hans", "high", "Sino-Tibetan", "cmn", _phrases("zh")),
        Language("ja", "Japanese", "Jpan", "high", "Japonic", "jpn", _phrases("ja")),
        Language("th", "Thai", "Thai", "low", "Kra-Dai", "tha", _phrases("th")),
        Language("sw", "Swahili", "Latn", "low", "Niger-Congo", "swh", _phrases("sw")),
        Language("bn", "Bengali", "Beng", "low", "Indo-European", "ben", _phrases("bn")),
        Language("te", "Telugu", "Telu", "low", "Dravidian", "tel", _phrases("te")),
        Language("ar", "Arabic", "Arab", "high", "Afro-Asiatic", "arb"),
        Language("hi", "Hindi", "Deva", "high", "Indo-European", "hin"),
        Language("ko", "Korean", "Kore", "high", "Koreanic", "kor"),
        Language("id", "Indonesian", "Latn", "low", "Austronesian", "ind"),
        Language("yo", "Yoruba", "Latn", "low", "Niger-Congo", "yor"),
    ]
}

MGSM_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te")


class UnknownLanguageError(UserInputError):
    """Raised for a language code the registry does not hold or cannot resolve uniquely."""


def _suggestions(text: str) -> list[str]:
    keys = {code: code for code in _REGISTRY} | {lang.name.lower(): lang.code for lang in _REGISTRY.values()}
    close = difflib.get_close_matches(text.lower(), list(keys), n=4, cutoff=0.5)
    seen: list[str] = []
    for key in close:
        if keys[key] not in seen:
            seen.append(keys[key])
    return seen


def resolve(code: str) -> Language:
    """Resolve a code or name (e.g. 'sw', 'swa', 'Swahili', 'es-419') to its registry entry.

    A region or script subtag is accepted only when it does not change the language (``zh-Hans`` is Chinese;
    ``zh-Hant`` is refused as ambiguous, since the registry's Chinese is Simplified).
    """
    raw = str(code).strip()
    if raw.lower() in _REGISTRY:
        return _REGISTRY[raw.lower()]
    for lang in _REGISTRY.values():
        if raw.lower() == lang.name.lower():
            return lang
    try:
        tag = langcodes.Language.get(langcodes.standardize_tag(raw))
    except (ValueError, LookupError):
        tag = None
    if tag is not None and tag.language in _REGISTRY:
        lang = _REGISTRY[tag.language]
        if tag.script and tag.script != lang.script and not (lang.script == "Jpan" and tag.script in {"Hira", "Kana"}):
            raise UnknownLanguageError(
                f"language {raw!r} is ambiguous: the registry holds {lang.code} in script {lang.script}, "
                f"not {tag.script}")
        return lang
    hint = _suggestions(raw)
    suffix = f"; did you mean {', '.join(hint)}?" if hint else ""
    raise UnknownLanguageError(f"unknown language {raw!r}{suffix} (known: {', '.join(sorted(_REGISTRY))})")


def resolve_all(codes: list[str]) -> list[str]:
    """Canonical codes for a list, in order, refusing duplicates."""
    out: list[str] = []
    for code in codes:
        canonical = resolve(code).code
        if canonical in out:
            raise UnknownLanguageError(f"language {code!r} is listed twice (as {canonical})")
        out.append(canonical)
    return out


def get(code: str) -> Language:
    """The entry for an already-canonical code."""
    return resolve(code)


def answer_phrases(code: str) -> tuple[str, ...]:
    """Every phrase strict math scoring accepts for `code` (exemplar phrases first); () for a language without
    MGSM phrases or a code the registry does not know."""
    try:
        return resolve(code).answer_phrases
    except UnknownLanguageError:
        return ()


def answer_phrase(code: str) -> str:
    """The canonical answer phrase of `code` (what training targets are written with); English's for a language
    without one of its own."""
    phrases = answer_phrases(code)
    return phrases[0] if phrases else MGSM_EXEMPLAR_PHRASES["en"][0]


def decimal_mark(code: str) -> str:
    """"," for a language that writes decimals with a comma (`COMMA_DECIMAL`), else "."."""
    return "," if code in COMMA_DECIMAL else "."


def known_codes() -> list[str]:
    return list(_REGISTRY)
