"""SQLite cache of translated segments, keyed by backend, model, languages, prompt version and source text.

The model part is the translator's identity (`model_id`): an HTTP server's model name and base URL (without
credentials), a local model's content digest, a translation memory's file digest; so another server or retrained
weights are asked again, not answered with the old translations.

Each batch is committed as soon as it is translated, so a killed process loses at most its in-flight batch.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def segment_key(backend: str, model: str, src: str, tgt: str, prompt_version: str, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return "|".join([backend, model, src, tgt, prompt_version, digest])


class TranslationCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS segments (key TEXT PRIMARY KEY, translation TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, translation FROM segments WHERE key IN ({marks})", chunk).fetchall()
            out.update(rows)
        return out

    def put_many(self, items: dict[str, str]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO segments VALUES (?, ?)", list(items.items()))
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM segments").fetchone()[0]

    def close(self) -> None:
        self._db.close()
