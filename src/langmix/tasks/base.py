"""The task interface and its registry."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from langmix import imported_source
from langmix.errors import UserInputError
from langmix.records import Example


@dataclass(frozen=True)
class TaskContext:
    """What a scorer may know beyond the item: the study's languages and the scoring mode."""

    study_languages: list[str] = field(default_factory=list)
    api_mode: str = "multilingual"


# What judges an item where a task names no modules of its own (every task of langmix names its own): the scorers,
# the registry's answer phrases and number formats, the task interface (`rate`), and `evaluate.run` (verdict
# checks, per-language aggregation, response-language fidelity). Named, not imported: the source is hashed
# (`scorer_digest`), so a later stage's module may be listed.
SCORER_MODULES: tuple[str, ...] = (
    "langmix.evaluate.math", "langmix.evaluate.number_reading", "langmix.evaluate.ast_check",
    "langmix.evaluate.call_compare", "langmix.evaluate.leniencies", "langmix.evaluate.call_parse",
    "langmix.evaluate.langid", "langmix.evaluate.schema", "langmix.evaluate.run", "langmix.languages",
    "langmix.tasks.base")
# lingua judges response and argument languages; `regex` reads the words of arguments in the checker's leniencies
SCORER_LIBRARIES: tuple[str, ...] = ("lingua-language-detector", "regex")


class Task:
    """One task. Subclasses fill in the class attributes and `score`/`metrics`.

    `score` returns the item's verdict record: it must hold `correct` (the headline verdict, bool) and `reason`
    (a short code: "ok", "wrong", "no_number", "parse_error", ...); other keys are task-specific and are kept in
    predictions.jsonl. `metrics` turns a language's verdict records into named rates.
    """

    name: str = ""
    default_max_new_tokens: int = 64
    headline_metric: str = ""
    judge_response_language: bool = False  # run language ID on outputs (natural-language answers)
    # the modules whose source decides this task's verdicts and metrics (None: SCORER_MODULES), and the
    # distributions whose versions do; the task's own module always counts (`scorer_digest`)
    scorer_modules: tuple[str, ...] | None = None
    scorer_libraries: tuple[str, ...] = SCORER_LIBRARIES

    def score(self, ex: Example, output: str, ctx: TaskContext) -> dict[str, Any]:
        raise NotImplementedError

    def metrics(self, items: list[dict[str, Any]]) -> dict[str, float | tuple[float, int]]:
        """Named rates over one language's verdicts: a value over all of them, or (value, n) for a rate over a
        subset (n: the subset's size, stored as the result row's n)."""
        raise NotImplementedError

    def strict_flexible(self, verdict: dict[str, Any]) -> tuple[bool | None, bool | None]:
        """The item's strict and flexible verdicts where the task has both (else None, None)."""
        return None, None

    def reference_problem(self, ex: Example) -> str | None:
        """Why `ex` cannot be scored (its `reference` lacks what `score` reads), or None. Checked for a whole eval
        set before anything is generated (`check_references`)."""
        return None

    def item_fields(self, ex: Example) -> dict[str, Any]:
        """Fields of the item that follow from the example alone, not from the output (e.g. whether an API item
        expects no call). Set on every prediction, scored or not, after the verdict: a metric that splits items
        by them never reads a value guessed for an item whose scorer failed."""
        return {}

    def rescore_fields(self, ex: Example) -> dict[str, Any]:
        """What `langmix score` needs beside the output to score the item again (its `reference`, in the shape
        `evaluate.rescore` reads); stored in predictions.jsonl so langmix's own outputs can be re-scored."""
        return {}


_REGISTRY: dict[str, Task] = {}


def _where(task: Task) -> str:
    return f"{type(task).__module__}.{type(task).__qualname__}"


def register(task: Task) -> Task:
    if not task.name or not task.headline_metric:
        raise ValueError(f"task {type(task).__name__} needs a name and a headline metric")
    known = _REGISTRY.get(task.name)
    if known is not None and _where(known) != _where(task):  # the same class registered again (a reload) is fine
        raise ValueError(f"task name {task.name!r} is taken by {_where(known)}; {_where(task)} needs another name")
    _REGISTRY[task.name] = task
    _keep_imported(task)
    return task


def _scorer_modules(task: Task) -> list[str]:
    return sorted({*(SCORER_MODULES if task.scorer_modules is None else task.scorer_modules), type(task).__module__})


def _keep_imported(task: Task) -> None:
    """At registration (the task module's import): what `scorer_digest` will hash, as it is now. A scoring module
    outside langmix is watched, so its source is kept when it is imported (langmix's own are kept at their import
    anyway: `langmix.imported_source`), or kept now where it was imported already (the task's own module, being
    imported); the scoring libraries' versions are kept now (those of the distributions being imported)."""
    for module in _scorer_modules(task):
        if imported_source.imported_hash(module) is not None:  # kept at its import (langmix's own modules)
            continue
        if module in sys.modules:
            _record_now(module)
        else:
            imported_source.watch(module)
    for lib in task.scorer_libraries:
        _library_version(lib)


def get(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def rate(items: list[dict[str, Any]], predicate) -> float:
    """Share of items for which `predicate(item)` holds (0.0 for no items)."""
    return sum(1.0 for p in items if predicate(p)) / len(items) if items else 0.0


class UnscorableReferenceError(UserInputError):
    """Evaluation examples whose reference the task cannot score."""


def check_references(task: Task, examples: list[Example]) -> None:
    """Refuse an eval set (naming up to 5 examples) where any example's reference cannot be scored, before the
    model generates anything."""
    bad = [(ex.id, why) for ex in examples if (why := task.reference_problem(ex))]
    if bad:
        shown = "; ".join(f"{i}: {why}" for i, why in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise UnscorableReferenceError(f"{len(bad)} of {len(examples)} {task.name} evaluation examples cannot be "
                                       f"scored: {shown}")


@dataclass(frozen=True)
class ScorerDigest:
    """A short hash of what judges a task's items (`digest`), and what went into it, one readable line each
    (`parts`: a module and its source's hash, a library and its version, the Unicode data's version)."""

    task: str
    digest: str
    parts: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        return {"task": self.task, "digest": self.digest, "parts": list(self.parts)}


def _module_source(module: str) -> bytes:
    """The source file of `module` as bytes (found, not imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.has_location:
        raise ValueError(f"scorer module {module!r} has no source file")
    with open(spec.origin, "rb") as f:
        return f.read()


_LIBRARY_VERSIONS: dict[str, str] = {}  # a scoring library -> its version when its first task was registered


def _library_version(name: str) -> str:
    """The version of distribution `name` when it was first asked for in this process (kept)."""
    if name not in _LIBRARY_VERSIONS:
        try:
            _LIBRARY_VERSIONS[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            _LIBRARY_VERSIONS[name] = "not installed"
    return _LIBRARY_VERSIONS[name]


def _record_now(module: str) -> str:
    """Record `module`'s source as its file reads now (for a module imported before it was watched) and return the
    hash."""
    found = imported_source.source_hash(_module_source(module))
    imported_source.record(module, found)
    return found


def _imported_hash(module: str) -> str:
    """The hash of `module`'s source as this process imported it (imported now where it was not yet: the code this
    process would run)."""
    if imported_source.imported_hash(module) is None and module not in sys.modules:
        importlib.import_module(module)
    found = imported_source.imported_hash(module)
    # imported before it was watched (a module outside langmix, registered later): now is all we have
    return found if found is not None else _record_now(module)


@cache
def scorer_digest(task_name: str) -> ScorerDigest:
    """The digest of task `task_name`'s scorer: computed from the source of its scorer modules (`Task.scorer_modules`
    and the task's own module), the versions of its `scorer_libraries`, and the Unicode data's version (number and
    name normalisation), so any change to what judges an item changes it, with no number to bump.

    It describes the code this process runs, however long after the import it is asked (a study trains for hours
    before it evaluates): each module's source as it was imported (`langmix.imported_source`), each library's
    version when the task was registered; a file edited since does not change it."""
    task = get(task_name)
    parts = [f"{m} {_imported_hash(m)}" for m in _scorer_modules(task)]
    parts += [f"{lib}=={_library_version(lib)}" for lib in sorted(task.scorer_libraries)]
    parts.append(f"unicodedata=={unicodedata.unidata_version}")
    digest = hashlib.sha256(json.dumps([task_name, parts]).encode()).hexdigest()[:16]
    return ScorerDigest(task_name, digest, tuple(parts))
