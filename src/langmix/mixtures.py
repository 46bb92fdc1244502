"""Language-coverage mixtures: expand designs, apply the budget, sample deterministically, write manifests.

A mixture is a list of `Example`s for one task plus a manifest (counts, tokens, source ids, content hash).
Sampling works on any parallel pool: `render(index, language)` gives the pool item `index` in `language`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from langmix.config import BudgetConfig, MixtureDesign
from langmix.records import Example

log = logging.getLogger(__name__)


class MixtureError(ValueError):
    """A design or budget that cannot be satisfied."""


class LineageError(MixtureError):
    """Training data would contain an evaluation item or a translation of it."""


@dataclass(frozen=True)
class MixtureSpec:
    """A concrete mixture: which languages, from which design."""

    name: str
    design: str
    languages: tuple[str, ...]


def expand_designs(designs: list[MixtureDesign], study_languages: list[str]) -> list[MixtureSpec]:
    """Turn coverage designs into concrete mixtures; repeated language sets are kept once (first name wins)."""
    others = [c for c in study_languages if c != "en"]
    specs: list[MixtureSpec] = []
    for d in designs:
        if d.design == "english_only":
            specs.append(MixtureSpec(d.name or "en", d.design, ("en",)))
        elif d.design == "en_plus_one":
            for lang in d.languages or others:
                if lang != "en":
                    specs.append(MixtureSpec(f"{d.name + '-' if d.name else ''}en+{lang}", d.design, ("en", lang)))
        elif d.design == "fixed":
            if not d.languages:
                raise MixtureError("a `fixed` design needs `languages`")
            specs.append(MixtureSpec(d.name or "+".join(d.languages), d.design, tuple(d.languages)))
        elif d.design == "growing":
            order = [c for c in (d.languages or others) if c != "en"]
            for k in range(1, len(order) + 1):
                specs.append(MixtureSpec(f"{d.name or 'grow'}-{k + 1}", d.design, ("en", *order[:k])))
        elif d.design == "held_out":
            if not d.exclude:
                raise MixtureError("a `held_out` design needs `exclude`")
            kept = tuple(c for c in study_languages if c not in d.exclude)
            specs.append(MixtureSpec(d.name or f"all-minus-{'-'.join(d.exclude)}", d.design, kept))
    unique: dict[frozenset, MixtureSpec] = {}
    for spec in specs:
        key = frozenset(spec.languages)
        if key in unique:
            log.warning("mixture %s has the same languages as %s; kept once", spec.name, unique[key].name)
            continue
        unique[key] = spec
    names = [s.name for s in unique.values()]
    if len(set(names)) != len(names):
        raise MixtureError(f"mixture names repeat: {names}")
    return list(unique.values())


def budget_counts(n_languages: int, budget: BudgetConfig) -> list[int]:
    """Examples per language. fixed_total splits `total` as evenly as possible (earlier languages get the
    remainder); per_language gives each language `per_language`."""
    if n_languages < 1:
        raise MixtureError("a mixture needs at least one language")
    if budget.mode == "per_language":
        return [budget.per_language] * n_languages
    if budget.total < n_languages:
        raise MixtureError(f"fixed_total budget {budget.total} is smaller than the {n_languages} languages")
    base, extra = divmod(budget.total, n_languages)
    return [base + (1 if i < extra else 0) for i in range(n_languages)]


def sample_mixture(spec: MixtureSpec, pool_size: int, render: Callable[[int, str], Example],
                   budget: BudgetConfig, seed: int, tag: str = "") -> list[Example]:
    """Deterministic sample: the same (spec, pool, budget, seed) always gives the same examples in the same order.

    Without `allow_shared_sources`, each source item appears in at most one language, so adding a language adds
    new content rather than a translation of content already present.
    """
    counts = budget_counts(len(spec.languages), budget)
    rng = random.Random(f"{spec.name}/{tag}/{seed}")
    picks: list[tuple[int, str]] = []
    if budget.allow_shared_sources:
        for lang, count in zip(spec.languages, counts):
            if count > pool_size:
                raise MixtureError(f"{spec.name}: {count} {lang} examples requested but the pool holds {pool_size}")
            picks += [(i, lang) for i in rng.sample(range(pool_size), count)]
    else:
        total = sum(counts)
        if total > pool_size:
            raise MixtureError(f"{spec.name}: {total} examples with distinct sources requested but the pool holds "
                               f"{pool_size}; enlarge the pool or set budget.allow_shared_sources")
        order = rng.sample(range(pool_size), total)
        start = 0
        for lang, count in zip(spec.languages, counts):
            picks += [(i, lang) for i in order[start:start + count]]
            start += count
    rng.shuffle(picks)
    return [render(i, lang) for i, lang in picks]


def build_manifest(spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int, examples: list[Example],
                   count_tokens: Callable[[str], int] | None = None) -> dict[str, Any]:
    """Counts per language, token counts (with `count_tokens`, else characters), source ids and a content hash."""
    per_lang = Counter(ex.language for ex in examples)
    sizes: Counter = Counter()
    for ex in examples:
        text = "".join(m["content"] for m in ex.messages)
        sizes[ex.language] += count_tokens(text) if count_tokens else len(text)
    unit = "tokens" if count_tokens else "chars"
    return {
        "name": spec.name, "design": spec.design, "languages": list(spec.languages), "task": task,
        "budget": budget.model_dump(), "seed": seed, "n_examples": len(examples),
        "examples_per_language": dict(per_lang), f"{unit}_per_language": dict(sizes),
        "source_ids": sorted({ex.source_id for ex in examples}),
        "content_hash": content_hash(examples),
    }


def content_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.model_dump_json().encode())
    return h.hexdigest()[:16]


def write_mixture(out_dir: Path, examples: list[Example], manifest: dict[str, Any]) -> Path:
    """Write `data.jsonl` (loadable with `datasets.load_dataset('json', ...)`) and `manifest.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "data.jsonl", "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(ex.model_dump_json() + "\n")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return out_dir / "data.jsonl"


def read_mixture(path: Path) -> list[Example]:
    """Read a mixture JSONL; a malformed line is an error naming the file and line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Example.model_validate_json(line))
            except ValueError as exc:
                raise MixtureError(f"{path}:{lineno}: not a valid example: {exc}") from None
    return out


def spec_dict(spec: MixtureSpec) -> dict[str, Any]:
    return asdict(spec)


def _question(ex: Example) -> str:
    users = [m["content"] for m in ex.messages if m["role"] == "user"]
    return " ".join(users[-1].split()).casefold() if users else ""


def check_lineage(train: list[Example], evaluation: list[Example]) -> None:
    """Refuse training data that shares a source id (any language) or an exact question with evaluation data."""
    eval_ids = {ex.source_id for ex in evaluation}
    eval_questions = {_question(ex): ex.source_id for ex in evaluation}
    clash = sorted({ex.source_id for ex in train if ex.source_id in eval_ids}
                   | {eval_questions[q] for q in map(_question, train) if q and q in eval_questions})
    if clash:
        shown = ", ".join(clash[:10]) + (" ..." if len(clash) > 10 else "")
        raise LineageError(f"{len(clash)} evaluation items (or translations of them) would be trained on: {shown}")
