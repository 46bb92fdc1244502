"""Language registry: the languages a study can name, with the facts the analysis needs.

Resource groups follow the MGSM paper's split into high-resource and underrepresented languages
(Shi et al., 2022, "Language Models are Multilingual Chain-of-Thought Reasoners", arXiv:2210.03057, which groups
bn, th, sw, te as underrepresented); languages outside MGSM follow the Joshi et al. (2020) "State and Fate of
Linguistic Diversity" taxonomy (classes 4-5 -> high, 0-3 -> low). URIEL codes are ISO 639-3 as URIEL uses them
(macro-languages mapped to the individual language URIEL indexes, e.g. sw -> swh, zh -> cmn).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import langcodes


@dataclass(frozen=True)
class Language:
    """One registry entry. `code` is the canonical BCP-47 language subtag."""

    code: str
    name: str
    script: str
    resource: str  # "high" or "low"
    family: str
    uriel: str


_REGISTRY: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("en", "English", "Latn", "high", "Indo-European", "eng"),
        Language("es", "Spanish", "Latn", "high", "Indo-European", "spa"),
        Language("fr", "French", "Latn", "high", "Indo-European", "fra"),
        Language("de", "German", "Latn", "high", "Indo-European", "deu"),
        Language("ru", "Russian", "Cyrl", "high", "Indo-European", "rus"),
        Language("zh", "Chinese", "Hans", "high", "Sino-Tibetan", "cmn"),
        Language("ja", "Japanese", "Jpan", "high", "Japonic", "jpn"),
        Language("th", "Thai", "Thai", "low", "Kra-Dai", "tha"),
        Language("sw", "Swahili", "Latn", "low", "Niger-Congo", "swh"),
        Language("bn", "Bengali", "Beng", "low", "Indo-European", "ben"),
        Language("te", "Telugu", "Telu", "low", "Dravidian", "tel"),
        Language("ar", "Arabic", "Arab", "high", "Afro-Asiatic", "arb"),
        Language("hi", "Hindi", "Deva", "high", "Indo-European", "hin"),
        Language("ko", "Korean", "Kore", "high", "Koreanic", "kor"),
        Language("id", "Indonesian", "Latn", "low", "Austronesian", "ind"),
        Language("yo", "Yoruba", "Latn", "low", "Niger-Congo", "yor"),
    ]
}

MGSM_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te")


class UnknownLanguageError(ValueError):
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
                f"language {raw!r} is ambiguous: the registry holds {lang.code} in script {lang.script}, not {tag.script}"
            )
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


def known_codes() -> list[str]:
    return list(_REGISTRY)
