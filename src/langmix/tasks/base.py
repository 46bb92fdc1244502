"""The task interface and its registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langmix.errors import UserInputError
from langmix.records import Example


@dataclass(frozen=True)
class TaskContext:
    """What a scorer may know beyond the item: the study's languages and the scoring mode."""

    study_languages: list[str] = field(default_factory=list)
    api_mode: str = "multilingual"


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
    return task


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
