"""Execute a study's jobs: train (unless base), then evaluate, each in a directory named by its key.

Layout under `<output_dir>/<name>/`:
- `train/<slug>/`: `config.yaml` (the TrainSpec), `mixture/`, `identity.json`, `checkpoints/`, `final/`
  (full weights or the LoRA adapter), `train_summary.json`, `DONE`;
- `eval/<slug>/`: `config.yaml` (the EvalSpec), `predictions.jsonl`, `items.parquet`, `results.parquet`,
  `scorer.json` (the scorer that judged it), `DONE`.
Each run is claimed before it starts (see `state.py`), so any number of drivers, local workers or SLURM jobs can
work on one study: a finished run is never repeated, an interrupted one resumes from its newest checkpoint, a
corrupt one is redone (so is a directory holding another run's files: `state.prepare_redo`), and a failure is
recorded and blocks only the runs that need its model.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import traceback
from pathlib import Path
from typing import Callable

from langmix import tasks
from langmix.config import StudyConfig, dump_resolved
from langmix.data.sources import open_source
from langmix.errors import UserInputError
from langmix.evaluate.run import evaluate, load_for_evaluation
from langmix.mixtures import build_mixture, check_budgets, item_rows, recheck_lineage
from langmix.models import load_tokenizer, resolve_model_path
from langmix.records import Example
from langmix.results import connect
from langmix.study.done import held_key
from langmix.study.eval_outputs import write_eval_outputs
from langmix.study.grid import EvalSpec, Job, TrainSpec, expand
from langmix.study.rescore_stale import rescore_stale
from langmix.study.progress import Hooks, Relay, WorkerProgress
from langmix.study.state import (ClaimLost, ensure_claim, mark_done, prepare_redo, run_state, set_aside,
                                 try_claim, write_status)
from langmix.tokenization import count_tokens_cached
from langmix.study.workers import WORKER, start_worker, stop_workers

log = logging.getLogger(__name__)

TRAIN_OUTPUTS = ["final", "train_summary.json", "mixture"]


def study_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.output_dir) / cfg.name


def train_dir(cfg: StudyConfig, spec: TrainSpec) -> Path:
    return study_dir(cfg) / "train" / spec.slug


def eval_dir(cfg: StudyConfig, spec: EvalSpec) -> Path:
    return study_dir(cfg) / "eval" / spec.slug


_FROZEN: set[str] = set()


def _freeze_long_lived(stage: str) -> None:
    """Move what exists now (imported modules: torch, transformers, TRL...) out of the garbage collector's view.

    The trainer calls `gc.collect()` at the end of every run; with the libraries' ~450k objects tracked that took
    0.2-0.3 s per run (quickstart: ~4 s of its overhead). Called at most twice per process (after the study's
    imports, after TRL's), so what one run leaves behind is still collected."""
    if stage not in _FROZEN:
        _FROZEN.add(stage)
        gc.collect()  # garbage of earlier runs in this process is collected, never frozen
        gc.freeze()


class RunBusy(RuntimeError):
    """Another live process holds the run's claim."""


def execute_train(spec: TrainSpec, path: Path, source, model_path: str, evaluation, hooks: Hooks,
                  show_progress: bool = False) -> None:
    """Build the mixture, fine-tune, and mark the run done (DONE last, so a crash never looks finished)."""
    held = held_key(path, {})
    if held is not None and held != spec.key:  # checked before anything of this run is written over its files
        raise UserInputError(f"{path} holds another run's training (train key {held}, not {spec.key}); nothing "
                             "was written there")
    # TRL's import is slow; base-only studies never pay it
    from langmix.train import train
    from langmix.train_callbacks import StepProgress

    _freeze_long_lived("trl")
    tasks.check_references(tasks.get(spec.task), evaluation)  # a run whose evaluation must fail is not trained
    dump_resolved(spec, path / "config.yaml")
    write_status(path, "running")
    tokenizer = load_tokenizer(spec.model, model_path, reuse=True)
    examples, _ = build_mixture(source, spec.mixture(), spec.task, spec.budget, spec.seed, evaluation,
                                path / "mixture",
                                lambda texts: count_tokens_cached(tokenizer, texts))
    name = f"train {spec.slug}"
    hooks.stage(name, 0)  # its steps are known once the trainer starts

    def start(total: int, done: int) -> None:
        hooks.stage(name, total)
        if done:  # resumed from a checkpoint
            hooks.advance(done)

    identity = train_identity(spec, examples)
    train(spec.model, model_path, examples, spec.training, spec.seed, path, show_progress=show_progress,
          identity=identity, guard=ensure_claim,
          callbacks=[StepProgress(start, hooks.advance, lambda loss: hooks.note(f"loss {loss:.4g}"))])
    ensure_claim()
    write_status(path, "done")
    mark_done(path, TRAIN_OUTPUTS, spec.key)


def train_identity(spec: TrainSpec, examples: list[Example]) -> dict:
    """What a training run records in `identity.json` and resumes only under: its train key and the training's own
    identity, a local model's path left out (its content is in the key), so a copied project resumes there."""
    from langmix.train import training_identity

    model = spec.model.model_copy(update={"path": None}) if spec.model_by_content else spec.model
    return {"train_key": spec.key, **training_identity(model, spec.training, spec.seed, examples)}


def execute_eval(spec: EvalSpec, path: Path, study: str, source, model_path: str, trained: Path | None,
                 hooks: Hooks) -> None:
    """Evaluate the base model or a trained one (loaded from disk), write predictions, items and metrics, and the
    scorer that judged them (`eval_outputs`)."""
    scorer = tasks.scorer_digest(spec.task)  # read before generating, close to when the scorer was imported
    dump_resolved(spec, path / "config.yaml")
    write_status(path, "running")
    examples = source.eval_examples(spec.task, spec.languages)
    if trained is not None:
        # the eval set may be newer than the model: the lineage check runs again against what it trained on
        recheck_lineage(trained / "mixture", examples, item_rows(source, spec.task))
    tokenizer, model = load_for_evaluation(spec.model, model_path, trained / "final" if trained else None,
                                           spec.evaluation)
    hooks.stage(f"evaluate {spec.slug}", len(examples))
    predictions, metrics = evaluate(model, tokenizer, examples, spec.evaluation, spec.languages, hooks.advance)
    write_eval_outputs(spec, path, study, predictions, metrics, scorer)


@contextlib.contextmanager
def claimed_for_redo(path: Path, before_redo: Callable[[str], bool] | None = None):
    """The run at `path` claimed and cleared for its (re)do, or why not: yields ('claimed', the claim), or
    ('skipped', None) for a finished run, ('busy', None) for one another process holds (or that `before_redo(state)`,
    called under the claim, declines). The one sequence of check, claim, re-check and `prepare_redo` that every
    executor runs before it works on a run."""
    if run_state(path) == "done":
        yield "skipped", None
        return
    claim = try_claim(path)
    if claim is None:
        yield "busy", None
        return
    with claim:
        state = run_state(path)
        if state == "done":  # finished by another driver between the check and the claim
            yield "skipped", None
        elif before_redo is not None and not before_redo(state):
            yield "busy", None
        else:
            prepare_redo(path, state)  # a corrupt run is redone; another run's files are set aside first
            yield "claimed", claim


def _guarded(path: Path, work: Callable[[], None], before_redo: Callable[[str], bool] | None = None) -> str:
    """Run `work` under the run's claim: 'done' | 'skipped' | 'busy' | 'failed'. `before_redo(state)`, under the
    claim, before the run is cleared for its redo: False leaves it as found ('busy')."""
    with claimed_for_redo(path, before_redo) as (settled, claim):
        if claim is None:
            return settled
        try:
            work()
            return "done"
        except ClaimLost as exc:  # the run is another process's now: its status and files are not touched
            log.error("run %s stopped: %s", path.name, exc)
            return "busy"
        except Exception as exc:  # one failed run must not stop the study
            # the first line of a long message on the console (a state-dict error lists every tensor); all of it
            # in status.json
            first, *rest = str(exc).strip().splitlines() or [type(exc).__name__]
            more = f" ... ({len(rest)} more lines; the whole error is in its status.json)" if rest else ""
            log.error("run %s failed: %s%s", path.name, first, more)
            write_status(path, "failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            return "failed"


class Context:
    """What the jobs of one process share: the data source and resolved model paths."""

    def __init__(self, cfg: StudyConfig, model_progress=None) -> None:
        self.cfg, self.model_progress = cfg, model_progress
        self.source = open_source(cfg.data)
        self._paths: dict[str, str] = {}

    def model_path(self, spec) -> str:
        if spec.model.name not in self._paths:
            self._paths[spec.model.name] = resolve_model_path(spec.model, self.model_progress)
        return self._paths[spec.model.name]


def run_job(cfg: StudyConfig, job: Job, ctx: Context | None = None, hooks: Hooks | None = None,
            show_train_progress: bool = False) -> dict[str, str]:
    """Train (unless base) and evaluate one job; returns {run slug: outcome}."""
    ctx, hooks = ctx or Context(cfg), hooks or Hooks()
    outcome: dict[str, str] = {}
    trained = None
    if job.train is not None:
        spec, path = job.train, train_dir(cfg, job.train)
        outcome[f"train/{spec.slug}"] = _guarded(path, lambda: execute_train(
            spec, path, ctx.source, ctx.model_path(spec), ctx.source.eval_examples(spec.task, cfg.languages),
            hooks, show_train_progress), lambda state: set_aside_evaluations(cfg, job, state))
        if run_state(path) != "done":
            waiting = "busy" if outcome[f"train/{spec.slug}"] == "busy" else "blocked"
            for ev in job.evals:
                outcome[f"eval/{ev.slug}"] = waiting
            return outcome
        trained = path
    for ev in job.evals:
        path = eval_dir(cfg, ev)
        outcome[f"eval/{ev.slug}"] = _guarded(path, lambda ev=ev, path=path: execute_eval(
            ev, path, cfg.name, ctx.source, ctx.model_path(ev), trained, hooks))
    return outcome


def set_aside_evaluations(cfg: StudyConfig, job: Job, train_state: str) -> bool:
    """Before a training whose files were another run's or corrupt (`train_state`) is redone: its finished
    evaluations were made from those files (an older langmix evaluated a training copied over another), so each is
    set aside (`state.set_aside`, a `stale-<time>` folder in it) and redone after the training. Done first, each
    under its claim: a driver killed in between finds the training still foreign or corrupt and does it again.
    False where a live process holds one of them (the training then waits too)."""
    if train_state not in ("foreign", "corrupt"):
        return True
    for ev in job.evals:
        path = eval_dir(cfg, ev)
        if run_state(path) != "done":  # not done: redone after the training anyway
            continue
        claim = try_claim(path)
        if claim is None:
            return False
        with claim:
            if run_state(path) == "done":
                aside = set_aside(path)
                log.warning("%s was evaluated from a training that is redone (it was %s): its files are set aside "
                            "in %s and it is evaluated again", path.name, train_state, aside)
    return True


def _prepare(cfg: StudyConfig, record: bool = True, source=None, write: bool = True) -> list[Job]:
    """The study's jobs, once every mixture they train is known to fit its pool (`check_budgets`, which reads the
    training data, unless re-evaluating: `record` False). `record` writes the resolved config as the study's
    `study.yaml` (what `plan --from`, `query` and `report` on the study directory read). Only `study run` records:
    a re-evaluation with overrides does not redefine the study. `write` False (a dry run) checks alone: nothing is
    created or written."""
    jobs = expand(cfg)
    if record:  # a re-evaluation trains nothing
        check_budgets(source or open_source(cfg.data), [(j.train.task, j.train.mixture()) for j in jobs if j.train],
                      cfg.budget)
    if not write:
        return jobs
    root = study_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    if record:
        dump_resolved(cfg, root / "study.yaml")
    return jobs


def _job_in_process(cfg_json: str, index: int) -> dict[str, str]:
    if WORKER["stopping"]:
        raise KeyboardInterrupt("the study was interrupted")
    cfg = StudyConfig.model_validate_json(cfg_json)
    _quiet_library_progress()
    _freeze_long_lived("study")
    relay = Relay(WORKER["events"]) if WORKER["events"] is not None else None
    WORKER["in_job"] = True
    try:
        return run_job(cfg, expand(cfg)[index], hooks=relay.hooks() if relay else None)
    finally:
        WORKER["in_job"] = False
        if relay:
            relay.flush()


def _quiet_library_progress() -> None:
    """datasets' and transformers' own bars (map passes, weight loading, shard writing) would interleave with the
    study's progress display; the study reports its stages itself."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def run_study(cfg: StudyConfig, hooks: Hooks | None = None, show_train_progress: bool = False,
              model_progress=None, workers: int | None = None) -> dict[str, list[str]]:
    """Run every unfinished job of the study on this machine; returns run names by outcome
    (done, skipped, failed, busy = held by another driver, blocked = its model failed to train)."""
    hooks = hooks or Hooks()
    if not show_train_progress:  # the study's own progress bars say where it is
        _quiet_library_progress()
    ctx = Context(cfg, model_progress)
    jobs = _prepare(cfg, source=ctx.source)
    finished_eval_dirs(cfg, ctx.source, jobs=jobs)  # runs judged by another scorer: re-scored before any table
    _freeze_long_lived("study")
    workers = workers or cfg.launcher.workers
    results: list[dict[str, str]] = []
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        for job in jobs:  # resolve (build) each base model once, before the workers need it
            ctx.model_path(job.evals[0])
        hooks.run_started(f"0 of {len(jobs)} jobs finished", 0, len(jobs))
        spawn = multiprocessing.get_context("spawn")
        relay = WorkerProgress(hooks, spawn) if hooks.worker is not None else contextlib.nullcontext()
        with relay:  # entered before the pool and left after it: it reads until every worker has exited
            pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=start_worker,
                                       initargs=(os.getpid(), getattr(relay, "events", None)))
            futures, interrupted = [], False
            try:
                futures += [pool.submit(_job_in_process, cfg.model_dump_json(), i) for i in range(len(jobs))]
                for done, fut in enumerate(as_completed(futures)):
                    results.append(fut.result())
                    hooks.run_started(f"{done + 1} of {len(jobs)} jobs finished", done + 1, len(jobs))
            except KeyboardInterrupt:  # SIGINT to the driver alone: without this, it waited for every run to finish
                interrupted = True
                stop_workers(pool, futures)
                log.warning("study interrupted: the runs in progress are left interrupted; `langmix study run` "
                            "resumes them")
                raise
            finally:
                pool.shutdown(wait=not interrupted)
    else:
        for i, job in enumerate(jobs):
            hooks.run_started(job.slug, i, len(jobs))
            results.append(run_job(cfg, job, ctx, hooks, show_train_progress))
    outcome: dict[str, list[str]] = {k: [] for k in ("done", "skipped", "failed", "busy", "blocked")}
    for result in results:
        for name, state in result.items():
            outcome[state].append(name)
    return outcome


def study_status(cfg: StudyConfig, jobs: list[Job] | None = None, evals_only: bool = False
                 ) -> list[tuple[str, object, str, Path]]:
    """(kind, spec, state, directory) for every train and eval run of the study (its grid: `jobs`, where the
    caller has expanded it). `evals_only`: the evaluation runs alone; a training's files (adapters, mixture) are
    then verified only where an evaluation of it is pending (blocked if the training failed)."""
    out: list[tuple[str, object, str, Path]] = []
    for job in jobs if jobs is not None else expand(cfg):
        states = [(ev, run_state(eval_dir(cfg, ev))) for ev in job.evals]
        trained = None
        if job.train is not None and (not evals_only or any(state == "pending" for _, state in states)):
            trained = run_state(train_dir(cfg, job.train))
            if not evals_only:
                out.append(("train", job.train, trained, train_dir(cfg, job.train)))
        for ev, state in states:
            if state == "pending" and trained == "failed":  # it cannot start until its training is redone
                state = "blocked"
            out.append(("eval", ev, state, eval_dir(cfg, ev)))
    return out


def finished_eval_dirs(cfg: StudyConfig, source=None, left_out: dict[Path, str] | None = None,
                       jobs: list[Job] | None = None, runs: list[tuple[str, object, str, Path]] | None = None
                       ) -> list[Path]:
    """Evaluation runs of the current grid (`jobs`, or their states `runs` from `study_status`, where the caller
    has them: each state verifies the run's files) whose outputs are complete and
    verified, judged by the current scorer: where every table, the report, `query` and `plan` find a study's
    finished runs, so a finished run judged by another scorer is re-scored here first, from its stored outputs
    (`rescore_stale`). A finished run left out (another process re-scoring it) is named in `left_out`
    ({directory: why}), for the list of runs not shown. Only evaluation runs are verified (not the trained models'
    files)."""
    if runs is not None:
        finished = [(spec, path) for kind, spec, state, path in runs if kind == "eval" and state == "done"]
    else:
        finished = [(ev, path) for job in (jobs if jobs is not None else expand(cfg)) for ev in job.evals
                    if run_state(path := eval_dir(cfg, ev)) == "done"]
    return rescore_stale(cfg, finished, source, left_out)


def study_tables(cfg: StudyConfig):
    """DuckDB connection with `results` and `items` views over the finished runs of the study (the Python
    shortcut the README names; the CLI reads them through `cli_study._finished_tables`)."""
    return connect(finished_eval_dirs(cfg))


def evaluate_study(cfg: StudyConfig, hooks: Hooks | None = None) -> dict[str, list[str]]:
    """Evaluate every model of the study that has finished training (and the base models) under the current
    evaluation settings; never trains. Evaluations already done with these settings are skipped."""
    hooks, jobs = hooks or Hooks(), _prepare(cfg, record=False)
    _quiet_library_progress()
    ctx = Context(cfg)
    finished_eval_dirs(cfg, ctx.source, jobs=jobs)  # those skipped below are judged by the current scorer too
    outcome: dict[str, list[str]] = {k: [] for k in ("done", "skipped", "failed", "busy", "untrained")}
    for i, job in enumerate(jobs):
        hooks.run_started(job.slug, i, len(jobs))
        trained = train_dir(cfg, job.train) if job.train is not None else None
        if trained is not None and run_state(trained) != "done":
            outcome["untrained"] += [f"eval/{e.slug}" for e in job.evals]
            continue
        for ev in job.evals:
            path = eval_dir(cfg, ev)
            state = _guarded(path, lambda ev=ev, path=path: execute_eval(
                ev, path, cfg.name, ctx.source, ctx.model_path(ev), trained, hooks))
            outcome[state].append(f"eval/{ev.slug}")
    return outcome
