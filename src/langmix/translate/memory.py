"""The translation memory backend: existing translations (a published parallel set, or TSV/JSONL per language)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langmix import languages as langs

if TYPE_CHECKING:
    from langmix.translate.backends import Request

log = logging.getLogger(__name__)


@dataclass
class MemoryBackend:
    """Existing translations (a published parallel set, or TSV/JSONL per language), keyed by source text, and by
    source id where the row gives one.

    JSONL rows: {"language", "text", "source", optionally "source_id"}; TSV rows: source<TAB>language<TAB>text.
    An id hit is used only when the row's source text is the request's (an edited source, or ids shifted by an
    inserted row, as gsm8k's positional ids are, would get another text's translation); otherwise the text is
    looked up. A row with an id and no source text cannot be checked and is refused. `stats` counts id hits, text
    hits, id hits set aside as stale, and misses.
    """

    path: str
    name: str = "memory"
    protects_numbers: bool = False
    prompt_version: str = "memory"
    stats: dict[str, int] = field(default_factory=lambda: {"id_hits": 0, "text_hits": 0, "stale_ids": 0,
                                                           "misses": 0})

    def __post_init__(self) -> None:
        from langmix.data.digest import file_digest
        from langmix.data.files import DataFormatError, iter_jsonl, iter_lines

        path = Path(self.path)
        # the file's content is the "model": an edited or replaced memory is not answered from the cache
        self.model_id = f"{path.name}@{file_digest(path)[:12]}"
        self.by_id: dict[tuple[str, str], tuple[str, str]] = {}  # (id, language) -> (source key, translation)
        self.by_text: dict[tuple[str, str], str] = {}
        if path.suffix == ".tsv":
            for lineno, line in iter_lines(path):  # UTF-8 (bad bytes name their line), a leading BOM dropped
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) != 3:
                    raise DataFormatError(path, lineno, "expected source<TAB>language<TAB>translation")
                self.by_text[(_key(parts[0]), _language(parts[1], path, lineno))] = parts[2]
            return
        for lineno, row in iter_jsonl(path):
            if not isinstance(row.get("text"), str) or not isinstance(row.get("language"), str):
                raise DataFormatError(path, lineno, "expected 'language' and 'text'")
            lang = _language(row["language"], path, lineno)
            if not isinstance(row.get("source"), str):
                raise DataFormatError(path, lineno, "expected 'source' (the English text); a row with 'source_id' "
                                      "but no 'source' cannot be checked against an edited or shifted source"
                                      if row.get("source_id") else "expected 'source' (the English text)")
            if row.get("source_id"):
                self.by_id[(str(row["source_id"]), lang)] = (_key(row["source"]), row["text"])
            self.by_text[(_key(row["source"]), lang)] = row["text"]

    def translate(self, requests: list[Request]) -> list[str | None]:
        out = []
        stale_before = self.stats["stale_ids"]
        for r in requests:
            segment_id = r.source_id[:-2] if r.source_id.endswith("#0") else r.source_id  # a bare id = the question
            by_id = self.by_id.get((r.source_id, r.tgt)) or self.by_id.get((segment_id, r.tgt))
            hit = None
            if by_id and by_id[0] == _key(r.text):
                hit = by_id[1]
                self.stats["id_hits"] += 1
            else:
                self.stats["stale_ids"] += by_id is not None
                hit = self.by_text.get((_key(r.text), r.tgt))
                self.stats["text_hits"] += hit is not None
            self.stats["misses"] += hit is None
            out.append(hit)
        if self.stats["stale_ids"] > stale_before:
            log.warning("%d translation-memory row(s) matched by id have another source text (an edited source, or "
                        "ids shifted by an inserted row): not used; the text was looked up instead",
                        self.stats["stale_ids"] - stale_before)
        return out


def _language(value: str, path: Path, lineno: int) -> str:
    """A row's language through the registry ('Spanish', 'es-ES' are es); an unknown one names the file and line."""
    from langmix.data.files import DataFormatError

    try:
        return langs.resolve(value).code
    except langs.UnknownLanguageError as exc:
        raise DataFormatError(path, lineno, str(exc)) from None


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()
