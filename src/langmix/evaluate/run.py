"""Evaluate a model on per-language example sets: generate, score every item, aggregate per language.

Every item yields a prediction record (kept for inspection, with its reason code) and counts in its language's
metrics; an output that cannot be parsed is wrong with a reason code, never dropped. What "correct" means and
which metrics a language gets is the task module's business (`langmix.tasks`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from langmix import tasks
from langmix.config import EvalConfig
from langmix.evaluate import langid
from langmix.evaluate.generate import generate
from langmix.records import Example
from langmix.tasks import TaskContext


def aggregate(predictions: list[dict[str, Any]]) -> list[tuple[str, str, str, float, int]]:
    """(task, language, metric, value, n) per language from per-item predictions.

    `response_language_fidelity_judged` is the share of the language-judged responses (n: how many were judged)
    that are in the prompt's language, as the report computes it; `response_language_unjudged` the share of all
    responses whose language could not be judged (n: all). (Runs evaluated before this name existed hold
    `response_language_fidelity`, a share of all responses: a new name, so the two are never mixed.)"""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for p in predictions:
        groups[(p["task"], p["language"])].append(p)
    rows = []
    for (task_name, lang), items in sorted(groups.items()):
        n = len(items)
        metrics = tasks.get(task_name).metrics(items)
        rows += [(task_name, lang, metric, *(value if isinstance(value, tuple) else (value, n)))
                 for metric, value in metrics.items()]
        if "response_language" in items[0]:
            judged = [p["response_language"] for p in items if p["response_language"] is not None]
            if judged:
                rows.append((task_name, lang, "response_language_fidelity_judged",
                             sum(1.0 for r in judged if r == lang) / len(judged), len(judged)))
            rows.append((task_name, lang, "response_language_unjudged", 1 - len(judged) / n, n))
    return rows


def max_new_tokens(cfg: EvalConfig, task_name: str) -> int:
    return cfg.max_new_tokens.get(task_name, tasks.get(task_name).default_max_new_tokens)


def evaluate(model, tokenizer, examples: list[Example], cfg: EvalConfig, study_languages: list[str],
             progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Generate for all `examples` (one task), score each, and aggregate per language."""
    if not examples:
        return [], []
    task = tasks.get(examples[0].task)
    tasks.check_references(task, examples)  # before any compute is spent
    outputs = generate(model, tokenizer, examples, max_new_tokens(cfg, task.name), cfg.batch_size, progress,
                       join_rows=cfg.continuous_batching)
    detected = langid.detect(outputs, study_languages) if (cfg.language_id and task.judge_response_language) \
        else None
    ctx = TaskContext(study_languages=study_languages, api_mode=cfg.api_checker)
    predictions = []
    for i, (ex, out) in enumerate(zip(examples, outputs)):
        record = {"id": ex.id, "source_id": ex.source_id, "task": ex.task, "language": ex.language,
                  "output": out, **task.score(ex, out, ctx), **task.rescore_fields(ex)}
        if detected is not None:
            record["response_language"] = detected[i]
        predictions.append(record)
    return predictions, aggregate(predictions)
