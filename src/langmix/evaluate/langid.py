"""Response-language identification with lingua, restricted to the study's languages (small and fast)."""

from __future__ import annotations

import re
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

_NON_TEXT = re.compile(r"[\d\s.,:;!?+\-*/=()\[\]{}\"'<>|_%$#@&^~`]+")


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]):
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def detect(texts: list[str], codes: list[str]) -> list[str | None]:
    """ISO 639-1 code of each text's language among `codes`, or None when the text has no letters to judge."""
    detector = _detector(tuple(sorted(codes)))
    stripped = [_NON_TEXT.sub(" ", t).strip() for t in texts]
    results = detector.detect_languages_in_parallel_of([s or "-" for s in stripped])
    return [r.iso_code_639_1.name.lower() if (r is not None and s) else None for r, s in zip(results, stripped)]
