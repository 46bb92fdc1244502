"""Evaluate a model on per-language example sets: generate (`generate_outputs`), score every item and aggregate per
language (`score_outputs`, also what re-scores stored outputs).

Every item yields a prediction record (kept for inspection, with its reason code) and counts in its language's
metrics; an output that cannot be parsed is wrong with a reason code, never dropped. What "correct" means and
which metrics a language gets is the task module's business (`langmix.tasks`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from langmix import tasks
from langmix.config import EvalConfig, ModelConfig
from langmix.evaluate import langid
from langmix.evaluate.generate import context_length, fit_context, generate, render_prompts, warn_over_context
from langmix.evaluate.vllm_engine import VllmModel, vllm_model
from langmix.models import load_model, load_tokenizer, load_trained, tokenizer_dir
from langmix.records import Example
from langmix.tasks import TaskContext
from langmix.tokenization import encode_cached

log = logging.getLogger(__name__)


def aggregate(predictions: list[dict[str, Any]]) -> list[tuple[str, str, str, float, int]]:
    """(task, language, metric, value, n) per language from per-item predictions.

    `response_language_fidelity_judged` is the share of the language-judged responses (n: how many were judged)
    that are in the prompt's language, as the report computes it; `response_language_unjudged` the share of all
    responses whose language could not be judged (n: all). (Runs evaluated before this name existed hold
    `response_language_fidelity`, a share of all responses: a new name, so the two are never mixed.)
    `context_exceeded` is the share of items whose prompt and answer length did not fit the model's context (n:
    all), where the predictions record it (`generate_outputs`)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for p in predictions:
        groups[(p["task"], p["language"])].append(p)
    rows = []
    for (task_name, lang), items in sorted(groups.items()):
        n = len(items)
        metrics = tasks.get(task_name).metrics(items)
        for metric, value in metrics.items():
            value, size = value if isinstance(value, tuple) else (value, n)
            if not isinstance(size, (int, np.integer)) or not 0 <= size <= n:
                raise ValueError(f"task {task_name!r}, metric {metric!r} in {lang}: n={size!r}, but a metric's n "
                                 f"counts items, here 0 to {n}")
            if size == 0:  # a rate over no items has no value: no row, rather than a number with n=0
                log.warning("task %r, metric %r in %s covers no item: not reported", task_name, metric, lang)
                continue
            rows.append((task_name, lang, metric, float(value), int(size)))
        if "response_language" in items[0]:
            judged = [p["response_language"] for p in items if p["response_language"] is not None]
            if judged:
                rows.append((task_name, lang, "response_language_fidelity_judged",
                             sum(1.0 for r in judged if r == lang) / len(judged), len(judged)))
            rows.append((task_name, lang, "response_language_unjudged", 1 - len(judged) / n, n))
        if "context_exceeded" in items[0]:  # prompt and answer length past the model's context
            rows.append((task_name, lang, "context_exceeded", sum(1 for p in items if p["context_exceeded"]) / n, n))
    return rows


def load_for_evaluation(model_cfg: ModelConfig, base_path: str, trained_dir: Path | None, cfg: EvalConfig):
    """(tokenizer, model) to evaluate: the base model (`trained_dir` None) or a trained one (its full weights, or
    the base plus its LoRA adapter), as a transformers model or, with `engine: vllm`, a vLLM engine's handle."""
    if cfg.engine == "vllm":
        tok_path = tokenizer_dir(trained_dir, base_path)
        return (load_tokenizer(model_cfg, tok_path, reuse=True),
                vllm_model(base_path, tok_path, model_cfg.dtype, trained_dir, cfg.vllm_engine_args,
                           model_cfg.trust_remote_code))
    if trained_dir is not None:
        return load_trained(model_cfg, base_path, trained_dir)
    return load_tokenizer(model_cfg, base_path, reuse=True), load_model(model_cfg, base_path, reuse=True)


def max_new_tokens(cfg: EvalConfig, task_name: str) -> int:
    return cfg.max_new_tokens.get(task_name, tasks.get(task_name).default_max_new_tokens)


def evaluate(model, tokenizer, examples: list[Example], cfg: EvalConfig, study_languages: list[str],
             progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Generate for all `examples` (one task), score each, and aggregate per language."""
    if not examples:
        return [], []
    task = tasks.get(examples[0].task)
    tasks.check_references(task, examples)  # before any compute is spent
    outputs, over_context = generate_outputs(model, tokenizer, examples, cfg, progress)
    return score_outputs(examples, outputs, cfg, study_languages, over_context)


def generate_outputs(model, tokenizer, examples: list[Example], cfg: EvalConfig,
                     progress: Callable[[int], None] | None = None) -> tuple[list[str], list[bool] | None]:
    """The model's output for each of `examples` (one task), in order: greedy, at most the task's answer length
    and never past the model's context; and whether each item's prompt and answer length exceeded that context
    (its answer then ends where the context does, or is empty where the prompt fills it: named in one warning;
    None where the model states no context length)."""
    limit = max_new_tokens(cfg, examples[0].task)
    caps, over, n_ctx = [limit] * len(examples), [], context_length(model)
    if n_ctx is not None:  # (a model that states no context: nothing to fit)
        rows = encode_cached(tokenizer, render_prompts(tokenizer, examples))  # cached: generation reads them again
        caps, over = fit_context(rows, caps, n_ctx)
        if over:
            warn_over_context(examples, rows, [limit] * len(rows), over, n_ctx)
    if isinstance(model, VllmModel):
        outputs = model.generate(tokenizer, examples, caps, cfg.batch_size, progress)
    else:
        outputs = generate(model, tokenizer, examples, caps, cfg.batch_size, progress,
                           join_rows=cfg.continuous_batching)
    exceeded = set(over)
    return outputs, None if n_ctx is None else [i in exceeded for i in range(len(examples))]


def score_outputs(examples: list[Example], outputs: list[str], cfg: EvalConfig, study_languages: list[str],
                  context_exceeded: list[bool] | None = None) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Score each output against its example (one task; `outputs[i]` answers `examples[i]`), judge the responses'
    languages where the task asks for it, and aggregate per language: (predictions, metric rows). What a fresh
    evaluation and the re-scoring of stored outputs (`langmix.study.rescore_stale`) both run.
    `context_exceeded` (from `generate_outputs`; None: not known) is kept with each prediction and counted per
    language as the metric `context_exceeded` (the share of items whose prompt and answer length did not fit)."""
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} examples")
    if context_exceeded is not None and len(context_exceeded) != len(examples):
        raise ValueError(f"{len(context_exceeded)} context flags for {len(examples)} examples")
    if not examples:
        return [], []
    task = tasks.get(examples[0].task)
    tasks.check_references(task, examples)
    detected = langid.response_languages(outputs) if (cfg.language_id and task.judge_response_language) \
        else None
    ctx = TaskContext(study_languages=study_languages, api_mode=cfg.api_checker)
    verdicts = [_verdict(task, ex, out, ctx) for ex, out in zip(examples, outputs)]
    failed = [i for i, v in enumerate(verdicts) if v["reason"] == SCORER_ERROR]
    if failed and len(failed) == len(verdicts):  # no verdict to learn the task's fields from, nothing to report
        raise RuntimeError(f"the {task.name} scorer failed on all {len(verdicts)} items (first: "
                           f"{verdicts[0]['scorer_error']}); fix the task module or its references")
    if failed:
        good = next(v for v in verdicts if v["reason"] != SCORER_ERROR)
        for i in failed:  # the task's other verdict fields, as a wrong answer has them, for its metrics to read
            # (fields of the example itself come from `task.item_fields` below, never from this guess)
            verdicts[i] = {**{k: False if isinstance(v, bool) else None for k, v in good.items()}, **verdicts[i]}
        log.warning("%d of %d %s items could not be scored (the scorer failed: %s); each is counted wrong with "
                    "reason %s", len(failed), len(verdicts), task.name, verdicts[failed[0]]["scorer_error"],
                    SCORER_ERROR)
    predictions = []
    for i, (ex, out) in enumerate(zip(examples, outputs)):
        record = {"id": ex.id, "source_id": ex.source_id, "task": ex.task, "language": ex.language,
                  "output": out, **verdicts[i], **task.item_fields(ex), **task.rescore_fields(ex)}
        if detected is not None:
            record["response_language"] = detected[i]
        if context_exceeded is not None:
            record["context_exceeded"] = bool(context_exceeded[i])
        predictions.append(record)
    return predictions, aggregate(predictions)


SCORER_ERROR = "scorer_error"


def _verdict(task: tasks.Task, ex: Example, output: str, ctx: TaskContext) -> dict[str, Any]:
    """`task.score`, or a wrong verdict with reason `scorer_error` where the scorer raised or returned something
    that is not a verdict (a dict with a bool `correct` and a str `reason`): one bad item must neither end the
    run, losing every generation, nor count as correct (`bool("no")` is True)."""
    try:
        verdict = task.score(ex, output, ctx)
    except Exception as exc:  # noqa: BLE001 (a task module's bug, on one item)
        return {"correct": False, "reason": SCORER_ERROR, "scorer_error": f"{type(exc).__name__}: {exc}"}
    if not isinstance(verdict, dict) or type(verdict.get("correct")) not in (bool, np.bool_) \
            or not isinstance(verdict.get("reason"), str):
        return {"correct": False, "reason": SCORER_ERROR,
                "scorer_error": f"score returned {str(verdict)[:200]!r}, not a dict with a bool 'correct' and a "
                                f"str 'reason'"}
    return {**verdict, "correct": bool(verdict["correct"])}
