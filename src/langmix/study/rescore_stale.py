"""Finished evaluations judged by another scorer, re-scored from their stored outputs: no model, no generation.

Every finished evaluation records the digest of the scorer that judged it (`eval_outputs.SCORER_FILE`,
`langmix.tasks.scorer_digest`). Once the scoring code or a scoring library changes, its verdicts are another
scorer's, and a table mixing them with new evaluations' would hold two scorers' numbers under one name. Before any
table is built from a study's finished evaluations (`runner.finished_eval_dirs`, which `run_study`,
`evaluate_study`, the report, `query` and `plan` go through), each one whose recorded digest is not its task's
current one, or that has none (finished before digests were recorded), is judged again: its examples are rebuilt as
`execute_eval` builds them, its stored outputs matched to them by id, and both go through the scorer a fresh
evaluation runs (`evaluate.run.score_outputs`); its files are rewritten as `execute_eval` writes them
(`eval_outputs.write_eval_outputs`), under the run's claim.

An evaluation whose stored outputs do not fit its examples (an id missing, extra or repeated; an item whose
language or reference changed since it was generated) cannot be re-scored: its verdicts are not kept as if current.
It is marked failed (its error in status.json, DONE removed), so no table includes it and the next `study run`
evaluates it again. Any other failure (a scorer bug, a full disk) is not the run's: the run stays finished, its
outputs kept, and no table is built (`RescoreFailed`, one line naming the eval and the exception).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from langmix import tasks
from langmix.config import StudyConfig
from langmix.data.files import DataFormatError, iter_jsonl
from langmix.errors import UserInputError
from langmix.data.sources import open_source
from langmix.evaluate.run import score_outputs
from langmix.records import Example
from langmix.study.eval_outputs import recorded_scorer, scorer_record, write_eval_outputs
from langmix.study.grid import EvalSpec
from langmix.study.state import ClaimLost, run_state, try_claim, write_status

log = logging.getLogger(__name__)
PROGRESS_EVERY = 25  # a log line every this many evaluations re-scored


class RescoreError(ValueError):
    """A finished evaluation's stored outputs do not fit its examples."""


class RescoreFailed(UserInputError):
    """Re-scoring a finished evaluation failed for another reason than its outputs (a scorer bug, a full disk): the
    run is left finished (its outputs intact, still judged by the other scorer) and no table is built, since one
    would mix two scorers' verdicts. One line in the CLI (a `UserInputError`): the eval and the exception."""


def is_stale(spec: EvalSpec, path: Path) -> bool:
    """Whether the finished evaluation at `path` was judged by another scorer than its task's current one (or by an
    unknown one: no scorer record)."""
    return recorded_scorer(path) != tasks.scorer_digest(spec.task).digest


def _json(value: Any) -> Any:
    """`value` as predictions.jsonl holds it after a JSON round trip (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False))


def _shown(ids: list[str], k: int = 5) -> str:
    return ", ".join(ids[:k]) + (f" ... ({len(ids)} in all)" if len(ids) > k else "")


def stored_predictions(spec: EvalSpec, path: Path, examples: list[Example]) -> list[dict[str, Any]]:
    """The prediction stored in `path`/predictions.jsonl for each of `examples`, in their order, matched by id. Raises
    RescoreError, naming the evaluation, for a line that cannot be read, an id missing, extra or repeated, or an
    item whose task, language, source or reference (as stored for `langmix score`) is not its example's now: the
    output answered another question."""
    where = f"eval {spec.slug}"
    task = tasks.get(spec.task)
    stored: dict[str, dict[str, Any]] = {}
    repeated: list[str] = []
    try:  # lines end at "\n" alone: an output may hold U+2028 or U+0085, written raw (str.splitlines splits there)
        rows = list(iter_jsonl(path / "predictions.jsonl"))
    except (OSError, DataFormatError) as exc:
        raise RescoreError(f"{where}: cannot read predictions.jsonl: {exc}") from None
    for lineno, row in rows:
        if not isinstance(row.get("id"), str) or not isinstance(row.get("output"), str):
            raise RescoreError(f"{where}: predictions.jsonl:{lineno} has no string 'id' and 'output'")
        if row["id"] in stored:
            repeated.append(row["id"])
        stored[row["id"]] = row
    if repeated:
        raise RescoreError(f"{where}: predictions.jsonl holds ids more than once: {_shown(repeated)}")
    wanted = [ex.id for ex in examples]
    if len(set(wanted)) != len(wanted):
        raise RescoreError(f"{where}: its evaluation examples repeat ids, so outputs cannot be matched to them")
    missing = [i for i in wanted if i not in stored]
    extra = sorted(set(stored) - set(wanted))
    if missing or extra:
        raise RescoreError(f"{where}: predictions.jsonl does not hold one output per evaluation example ("
                           + "; ".join(([f"{len(missing)} missing: {_shown(missing)}"] if missing else [])
                                       + ([f"{len(extra)} not in the eval set: {_shown(extra)}"] if extra else []))
                           + "): the eval set changed since it was generated")
    changed = []
    for ex in examples:
        row = stored[ex.id]
        now = {"task": ex.task, "language": ex.language, "source_id": ex.source_id, **task.rescore_fields(ex)}
        # a field absent from an older predictions.jsonl is not compared
        if any(k in row and row[k] != _json(v) for k, v in now.items()):
            changed.append(ex.id)
    if changed:
        raise RescoreError(f"{where}: {len(changed)} items differ from their examples now (task, language, source "
                           f"or reference): {_shown(changed)}: the eval set changed since it was generated")
    return [stored[i] for i in wanted]


def _headline(path: Path, metric: str) -> dict[str, float] | None:
    """The run's headline metric per language as its results.parquet holds it, or None where unreadable."""
    try:
        rows = pq.read_table(path / "results.parquet", columns=["language", "metric", "value"]).to_pylist()
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    return {r["language"]: r["value"] for r in rows if r["metric"] == metric}


def changed_parts(old: dict[str, Any] | None, new: tasks.ScorerDigest) -> str:
    """What differs between a recorded scorer and the current one, part by part: 'regex==2024.1 -> 2025.2; ...'."""
    if old is None or not isinstance(old.get("parts"), list):
        return "its scorer is unknown (no scorer record)"

    def keyed(parts) -> dict[str, str]:
        return {str(p).split(" ")[0].split("==")[0]: str(p) for p in parts}

    before, after = keyed(old["parts"]), keyed(new.parts)
    lines = [f"{before.get(k, f'{k} (none)')} -> {after[k][len(k):].strip(' =') or after[k]}" if k in before
             else f"{after[k]} (new)" for k in sorted(after) if before.get(k) != after[k]]
    lines += [f"{before[k]} (gone)" for k in sorted(set(before) - set(after))]
    return "; ".join(lines) or "no part differs (the digest's inputs were combined differently)"


def rescore_eval(spec: EvalSpec, path: Path, study: str, source) -> None:
    """Judge the finished evaluation at `path` again from its stored outputs with the current scorer, and rewrite
    its predictions, items, results and scorer record as `execute_eval` writes them, with a line appended to its
    `rescored.jsonl` (the trail: when, the old and new scorer records, the old and new headline metric per
    language). Loads no model."""
    examples = source.eval_examples(spec.task, spec.languages)  # as execute_eval builds them
    stored = stored_predictions(spec, path, examples)
    exceeded = [row.get("context_exceeded") for row in stored]  # recorded at generation (older runs: unknown)
    predictions, metrics = score_outputs(examples, [row["output"] for row in stored], spec.evaluation,
                                         spec.languages, exceeded if all(type(e) is bool for e in exceeded) else None)
    scorer, headline = tasks.scorer_digest(spec.task), tasks.get(spec.task).headline_metric
    trail = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "old_scorer": scorer_record(path),
             "new_scorer": scorer.record(), "headline_metric": headline, "old": _headline(path, headline),
             "new": {lang: value for _, lang, metric, value, _ in metrics if metric == headline}}
    write_eval_outputs(spec, path, study, predictions, metrics, scorer, trail=trail)


BUSY = "being re-scored by another process"


def rescore_stale(cfg: StudyConfig, finished: list[tuple[EvalSpec, Path]], source=None,
                  left_out: dict[Path, str] | None = None) -> list[Path]:
    """Re-score each of the `finished` evaluations judged by another scorer (`rescore_eval`); returns the
    directories of those now judged by the current one, in order. One that cannot be re-scored is marked failed
    (the module docstring); one another process holds is left out, with a warning, and named in `left_out` (its
    directory: why) for the caller's list of runs not in its table."""
    left_out = {} if left_out is None else left_out
    stale = [(spec, path) for spec, path in finished if is_stale(spec, path)]
    if not stale:
        return [path for _, path in finished]
    source = source or open_source(cfg.data)
    rescored: list[str] = []
    changes: dict[tuple[str, str | None, str], str] = {}  # (task, old digest, new digest): what changed
    for i, (spec, path) in enumerate(stale):
        if i and i % PROGRESS_EVERY == 0:
            log.info("re-scoring finished evaluations judged by another scorer: %d of %d", i, len(stale))
        claim = try_claim(path)
        if claim is None:
            log.warning("eval %s was judged by another scorer and another process holds it now: not in this "
                        "table", spec.slug)
            left_out[path] = BUSY
            continue
        with claim:  # another process may have re-scored it, or redone it, between the check and the claim
            if (state := run_state(path)) != "done":
                left_out[path] = state
                continue
            if not is_stale(spec, path):
                continue
            try:
                old = scorer_record(path)
                new = tasks.scorer_digest(spec.task)
                key = (spec.task, (old or {}).get("digest"), new.digest)
                if key not in changes:
                    changes[key] = changed_parts(old, new)
                rescore_eval(spec, path, cfg.name, source)
                rescored.append(spec.slug)
            except ClaimLost as exc:
                log.error("eval %s: re-scoring stopped: %s", spec.slug, exc)
                left_out[path] = BUSY
            except RescoreError as exc:  # its outputs answer another eval set: only generating again can help
                log.error("%s; it is marked failed (not in any table) and `langmix study run` evaluates it again", exc)
                write_status(path, "failed", error=f"judged by another scorer, and re-scoring its stored outputs "
                             f"failed: {type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                (path / "DONE").unlink(missing_ok=True)
                left_out[path] = "failed"
            except Exception as exc:  # the scorer's fault or the machine's, not the run's: its outputs are kept
                first = (str(exc).strip().splitlines() or [""])[0]
                try:  # still done: the traceback beside its state, for whoever fixes the scorer
                    write_status(path, "done", rescore_error=f"{type(exc).__name__}: {exc}",
                                 traceback=traceback.format_exc())
                except OSError:
                    log.error("eval %s: re-scoring failed", spec.slug, exc_info=True)
                raise RescoreFailed(
                    f"eval {spec.slug} was judged by another scorer, and re-scoring its stored outputs failed: "
                    f"{type(exc).__name__}: {first}; no table is built (it would mix two scorers' verdicts). The run "
                    "is left finished, its outputs kept: fix the cause and run again (the traceback: "
                    f"{path / 'status.json'})"
                ) from exc
    if rescored:
        n = len(rescored)
        log.warning("%d finished evaluation%s judged by another scorer; re-scored from %s stored outputs (%s); %s "
                    "(each run's trail: rescored.jsonl)", n, " was" if n == 1 else "s were",
                    "its" if n == 1 else "their", _shown(rescored, 3),
                    "; ".join(f"{task} scorer {old or 'unknown'} -> {new}: {what}"
                              for (task, old, new), what in changes.items()))
    return [path for _, path in finished if path not in left_out]
