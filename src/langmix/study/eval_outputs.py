"""What a finished evaluation run holds, written one way whether its outputs were just generated
(`runner.execute_eval`) or re-scored from the stored ones (`rescore_stale`).

`scorer.json` records the scorer that judged the run (`langmix.tasks.scorer_digest`: the task, its digest, and what
went into it); every row of `items.parquet` and `results.parquet` carries the digest too (`scorer_digest`). A run
finished before scorer.json existed has none: its scorer is unknown, so it counts as judged by another one.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from langmix import languages as langs
from langmix import tasks
from langmix.models import parameter_count
from langmix.records import ItemRow, ResultRow
from langmix.results import write_items, write_predictions, write_rows
from langmix.study.grid import EvalSpec
from langmix.study.state import ensure_claim, staging_dir, swap_in, write_json_atomic, write_status

log = logging.getLogger(__name__)

SCORER_FILE = "scorer.json"
EVAL_OUTPUTS = ["predictions.jsonl", "items.parquet", "results.parquet", SCORER_FILE]
TRAIL = "rescored.jsonl"  # a line per re-scoring: when, the scorers, the headline metric before and after


def write_eval_outputs(spec: EvalSpec, path: Path, study: str, predictions: list[dict[str, Any]],
                       metrics: list[tuple], scorer: tasks.ScorerDigest, trail: dict[str, Any] | None = None) -> None:
    """Write the run's predictions, item and result rows and scorer record, then mark it done: written in a staging
    directory and swapped in with a journal (`state.swap_in`), so a crash never looks finished, and never turns a
    finished run being re-scored corrupt. Nothing is written once the run's claim is lost."""
    task = tasks.get(spec.task)
    meta = dict(study=study, model=spec.model.name, mixture=spec.mixture_name, design=spec.design,
                train_languages=",".join(spec.train_languages), seed=spec.seed, scorer_digest=scorer.digest)
    items = []
    params = int(parameter_count(spec.model) or 0)
    for p in predictions:
        strict, flexible = task.strict_flexible(p)
        items.append(ItemRow(eval_hash=spec.key, train_hash=spec.train_key, model_params=params,
                             n_train_languages=len(spec.train_languages), task=p["task"],
                             headline_metric=task.headline_metric, language=p["language"],
                             resource=langs.get(p["language"]).resource, item_id=p["id"], source_id=p["source_id"],
                             correct=bool(p["correct"]), correct_strict=strict, correct_flexible=flexible,
                             reason=str(p.get("reason", "")), response_language=p.get("response_language"),
                             **meta))
    rows = [ResultRow(run_hash=spec.key, task=t, language=lang, resource=langs.get(lang).resource, metric=metric,
                      value=value, n=n, **meta) for t, lang, metric, value, n in metrics]
    ensure_claim()
    staged = staging_dir(path)  # a finished run's files are replaced only once every new one is written
    try:
        write_predictions(predictions, staged / "predictions.jsonl")
        write_items(items, staged / "items.parquet")
        write_rows(rows, staged / "results.parquet")
        write_json_atomic(staged / SCORER_FILE, scorer.record())
        if trail is not None:  # re-scored: the previous scorer and verdicts, kept with the run
            previous = (path / TRAIL).read_bytes() if (path / TRAIL).exists() else b""
            (staged / TRAIL).write_bytes(previous + (json.dumps(trail, ensure_ascii=False) + "\n").encode())
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    ensure_claim()
    write_status(path, "done")
    swap_in(path, staged, EVAL_OUTPUTS + ([TRAIL] if trail is not None else []), EVAL_OUTPUTS, spec.key)


def scorer_record(path: Path) -> dict[str, Any] | None:
    """The scorer record of the finished run at `path` (task, digest, parts), or None where unknown (no scorer.json:
    a run finished before it was recorded; or an unreadable one)."""
    try:
        record = json.loads((path / SCORER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def recorded_scorer(path: Path) -> str | None:
    """The digest of the scorer that judged the finished run at `path`, or None where unknown (`scorer_record`)."""
    digest = (scorer_record(path) or {}).get("digest")
    return digest if isinstance(digest, str) else None
