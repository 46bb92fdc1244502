"""Evaluate a model on per-language example sets: generate, score every item, aggregate per language.

Every item yields a prediction record (kept for inspection) and counts in its language's metrics; an output that
cannot be parsed is wrong with a reason code, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from langmix.config import EvalConfig
from langmix.evaluate import langid
from langmix.evaluate.ast_check import check
from langmix.evaluate.generate import generate
from langmix.evaluate.math import score_math
from langmix.records import Example


def score_example(ex: Example, output: str, study_languages: list[str] | None = None) -> dict[str, Any]:
    """Per-item verdict for either task."""
    if ex.task == "math":
        v = score_math(output, ex.reference["answer"], ex.reference.get("answer_phrase", ""), ex.language)
        return {"correct_strict": v.strict_correct, "correct_flexible": v.flexible_correct,
                "extracted_strict": v.strict, "extracted_flexible": v.flexible, "reason": v.reason}
    if ex.task == "api":
        languages = study_languages or [ex.language]
        v = check(output, ex.reference["calls"], ex.tools or [],
                  lambda got, canonical: langid.wrong_language_argument(got, canonical, ex.language, languages))
        return {"correct": v.correct, "name_correct": v.name_correct, "args_correct": v.args_correct,
                "irrelevance": not ex.reference["calls"], "parsed_calls": v.calls, "reason": v.reason,
                "wrong_language_args": v.wrong_language_args}
    raise ValueError(f"no scorer for task {ex.task!r}")


def aggregate(predictions: list[dict[str, Any]]) -> list[tuple[str, str, str, float, int]]:
    """(task, language, metric, value, n) per language from per-item predictions."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for p in predictions:
        groups[(p["task"], p["language"])].append(p)
    rows = []
    for (task, lang), items in sorted(groups.items()):
        n = len(items)
        def mean(key: str, _items=items) -> float:
            return sum(1.0 for p in _items if p[key]) / n
        if task == "math":
            metrics = {"accuracy_strict": mean("correct_strict"), "accuracy_flexible": mean("correct_flexible"),
                       "unparsed_rate": sum(1.0 for p in items if p["reason"] == "no_number") / n}
        else:
            metrics = {"call_accuracy": mean("correct"), "name_accuracy": mean("name_correct"),
                       "argument_accuracy": mean("args_correct"),
                       "wrong_language_argument_rate": sum(1.0 for p in items if p["wrong_language_args"]) / n,
                       "parse_failure_rate": sum(1.0 for p in items if p["parsed_calls"] is None) / n}
            irrelevance = [p for p in items if p["irrelevance"]]
            if irrelevance:
                metrics["irrelevance_accuracy"] = sum(1.0 for p in irrelevance if p["correct"]) / len(irrelevance)
        judged = [p for p in items if p.get("response_language") is not None]
        if task == "math" and "response_language" in items[0]:
            metrics["response_language_fidelity"] = sum(
                1.0 for p in items if p["response_language"] == lang) / n
            metrics["response_language_unjudged"] = (n - len(judged)) / n
        rows += [(task, lang, metric, value, n) for metric, value in metrics.items()]
    return rows


def evaluate(model, tokenizer, examples: list[Example], cfg: EvalConfig, study_languages: list[str],
             progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Generate for all `examples` (one task), score each, and aggregate per language."""
    if not examples:
        return [], []
    task = examples[0].task
    outputs = generate(model, tokenizer, examples, cfg.max_new_tokens.get(task, 64), cfg.batch_size, progress)
    langs = langid.detect(outputs, study_languages) if (cfg.language_id and task == "math") else None
    predictions = []
    for i, (ex, out) in enumerate(zip(examples, outputs)):
        record = {"id": ex.id, "source_id": ex.source_id, "task": ex.task, "language": ex.language,
                  "output": out, **score_example(ex, out, study_languages)}
        if langs is not None:
            record["response_language"] = langs[i]
        predictions.append(record)
    return predictions, aggregate(predictions)
