"""Language-coverage mixtures: expand designs, apply the budget, sample deterministically, write manifests.

A mixture is a list of `Example`s for one task plus a manifest (counts, tokens, source ids, content hash).
Sampling works on any parallel pool: `render(index, language)` gives the pool item `index` in `language`.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from langmix.config import BudgetConfig, MixtureDesign
from langmix.lineage import (LineageReport, MixtureError, NearDuplicate, lineage, lineage_record,
                             refuse_clashes, refused_or_reported, warn_near)
from langmix.mixture_tally import MixtureTally
from langmix.records import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureSpec:
    """A concrete mixture: which languages, from which design."""

    name: str
    design: str
    languages: tuple[str, ...]


# Which of two designs with the same languages a study keeps: the analyses look for English-only, EN+1 and held-out
# mixtures by their design, so those outrank a `growing` step or a `fixed` set that happens to equal them.
_DESIGN_PRIORITY = {"english_only": 0, "en_plus_one": 1, "held_out": 2, "growing": 3, "fixed": 4}


def expand_designs(designs: list[MixtureDesign], study_languages: list[str], warn: bool = True) -> list[MixtureSpec]:
    """Turn coverage designs into concrete mixtures; a repeated language set is kept once, in its first place, as
    the design the analyses need most (`_DESIGN_PRIORITY`; the first on a tie), with a warning (`warn`: config
    validation expands too, and the command that uses the mixtures says it once)."""
    others = [c for c in study_languages if c != "en"]
    specs: list[MixtureSpec] = []
    for position, d in enumerate(designs):
        before = len(specs)
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
            kept = tuple(c for c in (d.languages or study_languages) if c not in d.exclude)
            name = d.name or f"all-minus-{'-'.join(d.exclude)}"
            if not kept:
                raise MixtureError(f"held_out design {name!r} excludes every language: it would train on nothing "
                                   f"(that is the base model, which `include_base` already evaluates)")
            specs.append(MixtureSpec(name, d.design, kept))
        if len(specs) == before:  # en_plus_one or growing with no language other than English
            listed = f"languages {list(d.languages)}" if d.languages else f"the study's languages {study_languages}"
            raise MixtureError(f"mixtures.{position} ({d.design}{' ' + repr(d.name) if d.name else ''}) makes no "
                               f"mixture: {listed} hold no language other than English")
    unique: dict[frozenset, MixtureSpec] = {}
    for spec in specs:
        key = frozenset(spec.languages)
        if key in unique:
            kept, dropped = sorted((unique[key], spec), key=lambda s: _DESIGN_PRIORITY[s.design])
            if warn:
                log.warning("mixtures %s (%s) and %s (%s) have the same languages; trained once, as %s (the analyses "
                            "that need a %s design find it)", unique[key].name, unique[key].design, spec.name,
                            spec.design, kept.name, kept.design)
            unique[key] = kept  # in the first one's place
            continue
        unique[key] = spec
    names = [s.name for s in unique.values()]
    if len(set(names)) != len(names):
        raise MixtureError(f"mixture names repeat: {sorted(n for n in names if names.count(n) > 1)}")
    by_slug: dict[str, str] = {}
    for name in names:
        other = by_slug.setdefault(mixture_slug(name), name)
        if other != name:
            raise MixtureError(f"mixture names {other!r} and {name!r} both become the folder name "
                               f"{mixture_slug(name)!r}; rename one")
    if "base" in names:
        raise MixtureError("'base' is reserved for the untrained model; rename that mixture")
    return list(unique.values())


def mixture_slug(name: str) -> str:
    """A mixture name as a folder name: characters other than letters, digits, '.', '-' become '_'."""
    return re.sub(r"[^A-Za-z0-9.\-]", "_", name)


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


def check_budget(spec: MixtureSpec, pool_size: int, budget: BudgetConfig) -> list[int]:
    """Examples per language of `spec` under `budget` (`budget_counts`), or a MixtureError naming the mixture where
    a pool of `pool_size` items cannot give them. Cheap: a study or `mix` checks every mixture before building any."""
    try:
        counts = budget_counts(len(spec.languages), budget)
    except MixtureError as exc:
        raise MixtureError(f"mixture {spec.name!r}: {exc}") from None
    if budget.allow_shared_sources:
        for lang, count in zip(spec.languages, counts):
            if count > pool_size:
                raise MixtureError(f"mixture {spec.name!r}: {count} {lang} examples requested but the pool holds "
                                   f"{pool_size}")
    elif sum(counts) > pool_size:
        raise MixtureError(f"mixture {spec.name!r}: {sum(counts)} examples with distinct sources requested but the "
                           f"pool holds {pool_size}; enlarge the pool or set budget.allow_shared_sources")
    return counts


def check_budgets(source, mixtures: list[tuple[str, MixtureSpec]], budget: BudgetConfig) -> None:
    """`check_budget` for each distinct (task, mixture) against its pool in `source`, before any is built: `mix` and
    a study must not build some mixtures, then fail on the others."""
    for task, spec in dict.fromkeys(mixtures):
        check_budget(spec, source.pool(task, list(spec.languages))[0], budget)


def sample_mixture(spec: MixtureSpec, pool_size: int, render: Callable[[int, str], Example],
                   budget: BudgetConfig, seed: int, tag: str = "") -> list[Example]:
    """Deterministic sample: the same (spec, pool, budget, seed) always gives the same examples in the same order
    (`sample_picks`, each rendered)."""
    return [render(i, lang) for i, lang in sample_picks(spec, pool_size, budget, seed, tag)]


def sample_picks(spec: MixtureSpec, pool_size: int, budget: BudgetConfig, seed: int,
                 tag: str = "") -> list[tuple[int, str]]:
    """The (pool index, language) of each example of the mixture, in order.

    Without `allow_shared_sources`, each source item appears in at most one language, so adding a language adds
    new content rather than a translation of content already present.
    """
    counts = check_budget(spec, pool_size, budget)
    rng = random.Random(f"{spec.name}/{tag}/{seed}")
    picks: list[tuple[int, str]] = []
    if budget.allow_shared_sources:
        for lang, count in zip(spec.languages, counts):
            picks += [(i, lang) for i in rng.sample(range(pool_size), count)]
    else:
        total = sum(counts)
        order = rng.sample(range(pool_size), total)
        start = 0
        for lang, count in zip(spec.languages, counts):
            picks += [(i, lang) for i in order[start:start + count]]
            start += count
    rng.shuffle(picks)
    return picks


def build_manifest(spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int, examples: list[Example],
                   count_tokens: Callable[[list[str]], list[int]] | None = None) -> dict[str, Any]:
    """Counts per language, token counts (with `count_tokens`: texts -> counts, else characters), source ids and a
    content hash."""
    tally = MixtureTally(count_tokens)
    tally.add(examples)
    return tally.manifest(spec, task, budget, seed)


def manifest_text(manifest: dict[str, Any]) -> str:
    """`manifest.json`'s text: a JSON object with one key per line, each value on its key's line. (`indent` would
    take json's pure-Python encoder: ~1 s for the source ids and near-duplicates of a 1M-example mixture.)"""
    fields = [f"  {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"
              for key, value in manifest.items()]
    return "{\n" + ",\n".join(fields) + "\n}\n"


def write_mixture(out_dir: Path, examples: list[Example], manifest: dict[str, Any]) -> Path:
    """Write `data.jsonl` (loadable with `datasets.load_dataset('json', ...)`) and `manifest.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "data.jsonl", "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(ex.model_dump_json() + "\n")
    (out_dir / "manifest.json").write_text(manifest_text(manifest), encoding="utf-8")
    return out_dir / "data.jsonl"


def read_mixture(path: Path) -> list[Example]:
    """Read a mixture JSONL; a malformed line is an error naming the file and line."""
    out = []
    with open(path, encoding="utf-8-sig") as f:  # a leading BOM dropped, as data.files does
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Example.model_validate_json(line))
            except ValidationError as exc:  # one line: the first problem and how many there are
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise MixtureError(f"{path}:{lineno}: not a valid example: {where + ': ' if where else ''}"
                                   f"{first['msg']} ({exc.error_count()} problem(s))") from None
    return out


def spec_dict(spec: MixtureSpec) -> dict[str, Any]:
    return asdict(spec)


def item_rows(source: Any, task: str) -> Callable[[Example], list[Example]] | None:
    """A training example of `task` -> its item's rows in the training data's other languages, from a source that
    knows them (`FileDataSource.item_rows`, which reads the training data at its first call), else None."""
    return source.item_rows(task) if hasattr(source, "item_rows") else None


def recheck_lineage(mixture_dir: Path, evaluation: list[Example],
                    related: Callable[[Example], list[Example]] | None = None) -> LineageReport:
    """The lineage check again at evaluation time (the eval set may be newer than the trained model): clashes are
    refused; near-duplicates are warned about only when they differ from those the manifest recorded at build
    time (else they were reported then). `related` (a training example -> its item's rows in the other languages,
    `item_rows`) has those rows checked too, as at build time: an es row whose English is a new evaluation
    question under another source id is a copy of it."""
    manifest_path = mixture_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    recorded = manifest.get("near_duplicates_of_eval", []) if manifest is not None else None
    if manifest is not None and _recorded_check_holds(manifest, mixture_dir / "data.jsonl", evaluation):
        return LineageReport(manifest["n_examples"], len(evaluation), [NearDuplicate(*d) for d in recorded])
    train = read_mixture(mixture_dir / "data.jsonl")
    report = refused_or_reported(train, evaluation, [related(ex) for ex in train] if related else None)
    if recorded is None or {tuple(d[:2]) for d in recorded} != {tuple(d[:2]) for d in report.near_duplicates}:
        warn_near(report.near_duplicates, str(mixture_dir))
    return report


def _recorded_check_holds(manifest: dict, data: Path, evaluation: list[Example]) -> bool:
    """Whether the manifest's lineage check was made against this eval set under these rules, on exactly the
    training data now in `data` (its content hash, recomputed from the file's lines without parsing them)."""
    if manifest.get("lineage_checked") != lineage_record(evaluation):
        return False
    tally = MixtureTally()
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            tally.hash_lines(block)
    return tally.content_hash() == manifest.get("content_hash")


def build_mixture(source, spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int,
                  evaluation: list[Example], out_dir: Path,
                  count_tokens: Callable[[list[str]], list[int]] | None = None) -> tuple[list[Example], dict[str, Any]]:
    """The one way a mixture is made: pool -> deterministic sample -> lineage check -> manifest -> write.

    `source` is a data source (`pool(task, languages)`); `evaluation` is the evaluation set the model will be
    scored on, so training data that overlaps it is refused before anything is written. Returns the examples
    exactly as written (each line of `data.jsonl` is one of them, serialised) and the manifest.
    """
    examples: list[Example] = []
    manifest = build_mixture_streaming(source, spec, task, budget, seed, evaluation, out_dir, count_tokens,
                                       keep=examples)
    return examples, manifest


def _stream_chunk(render: Callable[[int, str], Example], picks: list[tuple[int, str]], evaluation: list[Example],
                  count_tokens: Callable[[list[str]], list[int]] | None,
                  related: Callable[[Example], list[Example]] | None = None
                  ) -> tuple[bytes, MixtureTally, list, list, list[Example]]:
    """Render, lineage-check and count one chunk of picks: (its `data.jsonl` lines as bytes, their tally,
    near-duplicates, clashes, the examples). One bytes object crosses from a worker process as one copy; a list of
    lines was pickled and unpickled line by line, which cost the main process a third of the workers' time. The
    cyclic garbage collector is paused meanwhile: a chunk allocates ~100 small objects per example (n-gram
    tuples, messages) that reference counting frees, and the collector's passes over the mixture's picks took a
    quarter of the build time (measured, 100k examples)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        examples, clashes, near_dups = _checked_chunk(render, picks, evaluation, related)
        if clashes:  # nothing of this chunk is written; the caller refuses the mixture naming every clash
            return b"", MixtureTally(), [], clashes, []
        near = [list(d) for d in near_dups]
        tally = MixtureTally(count_tokens, digest=None)
        blob = tally.add(examples)
        tally.count_tokens = None  # hashed in order by the caller; neither crosses processes
        return blob, tally, near, [], examples
    finally:
        if paused:
            gc.enable()


def _checked_chunk(render: Callable[[int, str], Example], picks: list[tuple[int, str]], evaluation: list[Example],
                   related: Callable[[Example], list[Example]] | None) -> tuple[list[Example], list, list]:
    """One chunk of picks rendered and lineage-checked: (the examples, their clashes, their near-duplicates)."""
    examples = [render(i, lang) for i, lang in picks]
    clashes, near_dups = lineage(examples, evaluation, [related(ex) for ex in examples] if related else None)
    return examples, clashes, near_dups


def _sampled(source, spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int):
    """(render, related, picks): what a mixture is built from (its pool's renderer, the item rows of the other
    languages where the source knows them, and `sample_picks`)."""
    pool_size, render = source.pool(task, list(spec.languages))
    return render, item_rows(source, task), sample_picks(spec, pool_size, budget, seed, tag=task)


def check_mixture(source, spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int,
                  evaluation: list[Example], chunk: int = 5_000) -> None:
    """What `build_mixture` would refuse (a LineageError naming every clash), without building: the same picks
    rendered and lineage-checked chunk by chunk, nothing written, kept or counted (a dry run's check)."""
    render, related, picks = _sampled(source, spec, task, budget, seed)
    refuse_clashes([clash for start in range(0, len(picks), chunk)
                    for clash in _checked_chunk(render, picks[start:start + chunk], evaluation, related)[1]])


def _new_dirs(path: Path) -> list[Path]:
    """The directories `path.mkdir(parents=True)` would create, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


_STREAM_STATE: dict[str, Any] = {}


def _stream_worker(span: tuple[int, int]):
    """One chunk in a forked worker: `span` is (start, stop) in the picks, which the worker holds from the fork
    (sending them would pickle a million tuples in the main process)."""
    state = _STREAM_STATE
    picks = state["picks"][span[0]:span[1]]
    blob, tally, near, clashes, _ = _stream_chunk(state["render"], picks, state["evaluation"], state["count_tokens"],
                                                  state["related"])
    return blob, tally, near, clashes, []  # the examples stay in the worker (their lines carry them)


def build_mixture_streaming(source, spec: MixtureSpec, task: str, budget: BudgetConfig, seed: int,
                            evaluation: list[Example], out_dir: Path,
                            count_tokens: Callable[[list[str]], list[int]] | None = None, chunk: int = 5_000,
                            workers: int = 1, keep: list[Example] | None = None) -> dict[str, Any]:
    """`build_mixture` for mixtures too large to hold: the same `data.jsonl` (byte for byte) and `manifest.json`,
    written chunk by chunk as the examples are rendered and checked, so memory stays bounded by a chunk (plus the
    sampled (item, language) picks). Returns the manifest, not the examples. Nothing is published until every
    chunk passed the lineage check (the files are written under temporary names, then renamed). `workers` > 1
    renders and checks chunks in that many forked processes (POSIX), in order. `keep` (a list, one worker only)
    receives the examples written, in order (what `build_mixture` returns, without reading the file back)."""
    import os

    if keep is not None and workers > 1:
        raise ValueError("keep= needs workers=1 (the examples of other processes are not sent back)")
    # a source that knows its items' other language rows has them checked too (an es row whose English is an
    # evaluation question is a copy of it)
    render, related, picks = _sampled(source, spec, task, budget, seed)
    created = _new_dirs(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_data = out_dir / f".data.jsonl.{os.getpid()}.tmp"
    tally = MixtureTally(count_tokens)
    near: list = []
    clashes: list = []
    spans = [(s, min(s + chunk, len(picks))) for s in range(0, len(picks), chunk)]
    pool = None
    try:
        if workers > 1:
            import multiprocessing

            _STREAM_STATE.update(render=render, evaluation=evaluation, count_tokens=count_tokens, picks=picks,
                                 related=related)
            pool = multiprocessing.get_context("fork").Pool(workers)
            results = pool.imap(_stream_worker, spans)
        else:
            results = (_stream_chunk(render, picks[a:b], evaluation, count_tokens, related) for a, b in spans)
        with open(tmp_data, "wb") as f:
            for blob, chunk_tally, chunk_near, chunk_clashes, chunk_examples in results:
                clashes += chunk_clashes
                if clashes:
                    continue  # keep checking, to name every clash; nothing will be published
                f.write(blob)
                if keep is not None:
                    keep.extend(chunk_examples)
                tally.extend(blob, chunk_tally)
                near += chunk_near
        refuse_clashes(clashes)
    except BaseException:
        tmp_data.unlink(missing_ok=True)
        for made in created:  # a refused mixture leaves no empty directory that looks like a mixture
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()
        raise
    finally:
        if pool is not None:
            pool.terminate()
        _STREAM_STATE.clear()
    manifest = tally.manifest(spec, task, budget, seed)
    manifest["lineage_checked"] = lineage_record(evaluation)
    if near:
        manifest["near_duplicates_of_eval"] = near
        warn_near(near, f"mixture {spec.name} ({task})", f"{out_dir / 'manifest.json'}: near_duplicates_of_eval")
    tmp_data.replace(out_dir / "data.jsonl")
    (out_dir / "manifest.json").write_text(manifest_text(manifest), encoding="utf-8")
    return manifest
