"""Language identification with lingua: a response's language among every language lingua knows
(`response_languages`), or a text's among given candidates (`detect`: arguments, translations).

A response judged among the study's languages alone was forced into one of them: Italian read as Spanish,
Ukrainian as Russian, Zulu as Swahili, Dutch as German, each counted as an answer in the prompt's language, and
Hindi, Korean or Tamil were unjudged. Judged among all of lingua's spoken languages (74; Latin left out), an
answer in another language is that language, so it counts against fidelity. That detector is larger: measured on
a 2-core machine under load, the models for the 11 MGSM languages' answers took 1.2 GB and 15-20 s to load (the
study's 11 alone: 0.2 GB, 2-3 s), then about 1 ms per distinct text; lingua's low-accuracy mode (80 MB, under 1 s)
misread 5 of 28 short answers ("Jibu ni 18." as Latin), so it is not used. The models load lazily, once per
process, for the scripts the texts are written in: for the quickstart's first answers that is nearly all of them
(one short English answer needs every Latin-script language's 1- to 5-gram models), so preloading every model
took as long (4.6 s vs 4.2 s lazily, 1.26 GB vs 1.18 GB; 2 cores). lingua's parallel detection loads them on both
cores: one text at a time took 7-8 s (it was faster only while other processes held both cores).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from langmix.languages import WORD

# lingua reads at most this much of a text: its first and last halves. lingua's time grows faster than the length
# on text without spaces (measured: 128K characters of "x" took 2.65 s, 512K 39.9 s), and an answer's language
# shows in its first and last sentences.
MAX_CHARS = 4096
# Among all languages, a one-word answer ("Yes", "Total", "So") reads as any of several (Tsonga, Catalan,
# Sesotho): lingua returns no language where the best two are closer than this (relative distance), so such an
# answer is unjudged. Measured: no MGSM question, exemplar answer or answer phrase ("Jibu ni 18.") is lost at 0.1.
MIN_RELATIVE_DISTANCE = 0.1
ALL_LANGUAGES = ("*",)  # the candidates of `response_languages`, as a memo key

_NON_TEXT = re.compile(r"[\d\s.,:;!?+\-*/=()\[\]{}\"'<>|_%$#@&^~`]+")
# Code and LaTeX are in no natural language: fenced and inline code, LaTeX control words (\boxed, \times, \frac)
_MARKUP = re.compile(r"```.*?(?:```|$)|`[^`\n]*`|\\[A-Za-z]+", re.DOTALL)


def _bounded(text: str, limit: int) -> str:
    """`text`, or where longer than `limit` its first and last `limit // 2` characters."""
    return text if len(text) <= limit else text[:limit // 2] + " " + text[-(limit // 2):]


def _text_of(text: str) -> str:
    """What the language is judged on: `text` without code, LaTeX commands, digits and punctuation, at most
    `MAX_CHARS` of it (first and last halves; markup is stripped from a bounded part of a longer text too)."""
    stripped = _NON_TEXT.sub(" ", _MARKUP.sub(" ", _bounded(text, 8 * MAX_CHARS))).strip()
    return _bounded(stripped, MAX_CHARS)


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]):
    """The detector for `codes` (sorted), or for all of lingua's spoken languages (`ALL_LANGUAGES`). Its language
    models load lazily, as texts need them: ~1.4 s for the quickstart's answers in 11 languages, more for all
    languages (the module docstring). lingua releases the GIL while it loads (measured: another Python thread ran
    at ~70% of its speed meanwhile), but on a machine without an accelerator a background thread loading them
    would take the CPU from model compute."""
    if codes == ALL_LANGUAGES:
        return LanguageDetectorBuilder.from_all_spoken_languages() \
            .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE).build()
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*languages).build()


_DETECTED: dict[tuple[tuple[str, ...], str], str | None] = {}  # (languages, text stripped) -> language
_DETECTED_MAX = 100_000


def detect(texts: list[str], codes: list[str]) -> list[str | None]:
    """ISO 639-1 code of each text's language among `codes`, or None when the text has no letters to judge
    (outside code and LaTeX commands: `$9 \\times 2 = 18$. \\boxed{18}` is in no language).

    Each distinct text (after stripping digits and punctuation) is judged once per set of languages in this
    process: a study's runs answer the same prompts, and 93% of the quickstart's 19,800 answers repeat an earlier
    one once numbers are stripped (lingua takes ~60 us per text)."""
    return _judge(texts, tuple(sorted(set(codes))))


def response_languages(texts: list[str]) -> list[str | None]:
    """The language of each response among all languages lingua knows: its ISO 639-1 code (the registry's codes
    are these: `langmix.languages`; another language's code, "it", "uk", "zu", "nl", is never the prompt's); for
    letters in a script no such language is written in (Lao, Khmer, Kannada), `und-` and the script ("und-Lao":
    undetermined, as BCP 47 writes it); None where nothing can be judged: no letters outside code, LaTeX commands,
    digits and punctuation ("18", "x = 18"), or no clear language (`MIN_RELATIVE_DISTANCE`: "Yes", "Total").
    Judged as `detect` judges (each distinct text once, at most `MAX_CHARS` of it)."""
    return _judge(texts, ALL_LANGUAGES)


def _judge(texts: list[str], languages: tuple[str, ...]) -> list[str | None]:
    keys = [(languages, _text_of(t)) for t in texts]
    distinct = dict.fromkeys(keys)
    found = {k: _DETECTED[k] for k in distinct if k in _DETECTED}
    missing = [k for k in distinct if k not in found]
    if missing:
        detector = _detector(languages)
        results = detector.detect_languages_in_parallel_of([s or "-" for _, s in missing])
        new = {k: r.iso_code_639_1.name.lower() if (r is not None and k[1]) else None
               for k, r in zip(missing, results)}
        if languages == ALL_LANGUAGES:
            for k in [k for k, r in new.items() if r is None and k[1]]:
                new[k] = _unknown_script(detector, k[1])
        found.update(new)
        if len(_DETECTED) + len(new) > _DETECTED_MAX:
            _DETECTED.clear()
        if len(new) <= _DETECTED_MAX:
            _DETECTED.update(new)
    return [found[k] for k in keys]


def _unknown_script(detector, text: str) -> str | None:
    """`und-<Script>` for letters no language of `detector` is written in (lingua gives every language confidence
    0: Lao, Khmer, Kannada), else None (lingua saw letters it knows but named no language clearly)."""
    if any(c.value > 0 for c in detector.compute_language_confidence_values(text)):
        return None
    script = script_of(text)
    return f"und-{script.title()}" if script else None


def script_of(text: str) -> str | None:
    """The dominant script of the letters in `text` (LATIN, CYRILLIC, CJK, HIRAGANA, THAI, BENGALI, ...)."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "").split(" ")[0]
            counts[name] = counts.get(name, 0) + 1
    return max(counts, key=counts.get) if counts else None




def wrong_language_argument(got: str, canonical: str, lang: str, study_languages: list[str],
                            request: str | None = None) -> bool:
    """True when `got` is `canonical` written in the user's language `lang` rather than in its canonical form.

    Judged by script where the scripts differ (ja/zh/ru/th/bn/te users: `東京` for `Tokyo`), else by lingua
    restricted to `study_languages`, English and `lang` (es/fr/de/sw users writing e.g. 'grados Celsius' for
    'celsius'), except where lingua's guess would be noise: a value of one word ('Tafadhali', 'hoteli': a name or a
    loanword reads as any language), and a value copied verbatim (whole words) from the user's `request`, which
    is the request's own wording, not a translation the model made ('Lagos' from "kutoka Dakar hadi Lagos" given
    for the wrong parameter).
    """
    if lang == "en" or not got.strip():
        return False
    got_script, canonical_script = script_of(got), script_of(canonical)
    if got_script and canonical_script and got_script != canonical_script:
        return True
    if got_script != "LATIN" or len(WORD.findall(got)) < 2:
        return False
    if request:
        from langmix.evaluate.leniencies import _copied_span  # the checker's whole-word test (lazy: no cycle)

        if _copied_span(got, request):
            return False
    return detect([got], sorted(set(study_languages) | {"en", lang}))[0] == lang
