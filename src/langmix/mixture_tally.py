"""What a mixture's manifest counts (`MixtureTally`): examples and their size per language, source items, math
targets that state their answer in English's phrase, and the content hash of `data.jsonl`, accumulated example by
example or chunk by chunk (the streaming build counts chunks in worker processes and merges them in order).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from langmix import languages as langs
from langmix.config import BudgetConfig
from langmix.records import Example

if TYPE_CHECKING:
    from langmix.mixtures import MixtureSpec


_NO_PHRASE = frozenset(code for code in langs.known_codes() if not langs.answer_phrases(code))
_ENGLISH_PHRASE = langs.answer_phrase("en")


@dataclass
class MixtureTally:
    """What a manifest counts, accumulated example by example (or chunk by chunk, then merged in order)."""

    count_tokens: Callable[[list[str]], list[int]] | None = None  # texts -> token counts, one call per batch
    n: int = 0
    per_lang: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    sources: set[str] = field(default_factory=set)
    english_phrase: Counter = field(default_factory=Counter)  # math targets in English's phrase, per language
    digest: Any = field(default_factory=hashlib.sha256)

    def add(self, examples: list[Example]) -> bytes:
        """Count `examples`; returns their `data.jsonl` lines, each ending in a newline (what the content hash
        covers): the bytes of `model_dump_json`, from pydantic's serializer without the str round trip."""
        if self.count_tokens:
            sizes = self.count_tokens(["".join(m["content"] for m in ex.messages) for ex in examples])
        else:
            sizes = [sum([len(m["content"]) for m in ex.messages]) for ex in examples]
        lines = [ex.__pydantic_serializer__.to_json(ex) for ex in examples]  # a subclass's own serializer
        blob = b"\n".join(lines) + b"\n" if lines else b""
        if blob.count(b"\n") != len(examples):  # JSON escapes newlines in strings: a line never holds one
            raise AssertionError("a serialised example spans several lines")
        if self.digest is not None:  # a chunk's tally leaves the hash to the caller, who hashes in order
            self.hash_lines(blob)
        languages = [ex.language for ex in examples]
        self.per_lang.update(languages)
        per_language_size = self.sizes
        for language, size in zip(languages, sizes, strict=True):
            per_language_size[language] += size
        self.sources.update([ex.source_id for ex in examples])
        self.english_phrase.update(ex.language for ex in examples if ex.language in _NO_PHRASE
                                   and ex.task == "math" and ex.reference.get("answer_phrase") == _ENGLISH_PHRASE)
        self.n += len(examples)
        return blob

    def hash_lines(self, blob: bytes) -> None:
        """Add `data.jsonl` bytes (whole lines or any slice of the file, in order) to the content hash, which covers
        the lines without their newlines."""
        self.digest.update(blob.replace(b"\n", b""))

    def content_hash(self) -> str:
        return self.digest.hexdigest()[:16]

    def extend(self, blob: bytes, chunk: "MixtureTally") -> None:
        """Fold in the next chunk, counted elsewhere (e.g. in a worker process): its counts, and its lines (`blob`:
        the chunk's lines as written, each ending in a newline) into the content hash, in order."""
        self.hash_lines(blob)
        self.n += chunk.n
        self.per_lang.update(chunk.per_lang)
        self.sizes.update(chunk.sizes)
        self.sources |= chunk.sources
        self.english_phrase.update(chunk.english_phrase)

    def manifest(self, spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int) -> dict[str, Any]:
        unit = "tokens" if self.count_tokens else "chars"
        manifest = {
            "name": spec.name, "design": spec.design, "languages": list(spec.languages), "task": task,
            "budget": budget.model_dump(), "seed": seed, "n_examples": self.n,
            "examples_per_language": dict(self.per_lang), f"{unit}_per_language": dict(self.sizes),
            "source_ids": sorted(self.sources), "content_hash": self.content_hash(),
        }
        if self.english_phrase:  # languages without an answer phrase of their own in the registry
            manifest["english_answer_phrase_examples"] = dict(sorted(self.english_phrase.items()))
        return manifest
