"""Execute a study's jobs: train (unless base), then evaluate, each in a directory named by its key.

Layout under `<output_dir>/<name>/`:
- `train/<slug>/`: `config.yaml` (the TrainSpec), `mixture/`, `identity.json`, `checkpoints/`, `final/`
  (full weights or the LoRA adapter), `train_summary.json`, `DONE`;
- `eval/<slug>/`: `config.yaml` (the EvalSpec), `predictions.jsonl`, `items.parquet`, `results.parquet`,
  `scorer.json` (the scorer that judged it), `DONE`.
Each run is claimed before it starts (see `state.py`), so any number of drivers, local workers or SLURM jobs can
work on one study: a finished run is never repeated, an interrupted one resumes from its newest checkpoint, a
corrupt one is redone, and a failure is recorded and blocks only the runs that need its model.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from langmix import tasks
from langmix.config import StudyConfig, dump_resolved
from langmix.data.sources import open_source
from langmix.evaluate.run import evaluate, load_for_evaluation
from langmix.mixtures import build_mixture, check_budgets, recheck_lineage
from langmix.models import load_tokenizer, resolve_model_path
from langmix.results import connect
from langmix.study.eval_outputs import write_eval_outputs
from langmix.study.grid import EvalSpec, Job, TrainSpec, expand
from langmix.study.rescore_stale import rescore_stale
from langmix.study.state import ClaimLost, ensure_claim, mark_done, run_state, try_claim, write_status
from langmix.tokenization import count_tokens_cached

log = logging.getLogger(__name__)

TRAIN_OUTPUTS = ["final", "train_summary.json", "mixture"]


def study_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.output_dir) / cfg.name


def train_dir(cfg: StudyConfig, spec: TrainSpec) -> Path:
    return study_dir(cfg) / "train" / spec.slug


def eval_dir(cfg: StudyConfig, spec: EvalSpec) -> Path:
    return study_dir(cfg) / "eval" / spec.slug


@dataclass
class Hooks:
    """Progress callbacks the CLI fills in (rich); all optional.

    `stage(name, total)` starts a stage (total 0: not known yet; a training stage is started again with the
    trainer's steps once it knows them, and a resumed run then advances at once by its checkpoint's step),
    `advance(k)` counts k more steps or items, `note(text)` is a few words for the stage's line (the latest logged
    training loss). `worker(i)` gives the hooks of the i-th `--workers` process, whose stages are relayed to the
    driver (None: the workers report only finished jobs)."""

    run_started: Callable[[str, int, int], None] = lambda slug, i, n: None
    stage: Callable[[str, int], None] = lambda name, total: None
    advance: Callable[[int], None] = lambda k: None
    note: Callable[[str], None] = lambda text: None
    worker: Callable[[int], Hooks] | None = None


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
    # TRL's import is slow; base-only studies never pay it
    from langmix.train import StepProgress, train, training_identity

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

    identity = {"train_key": spec.key, **training_identity(spec.model, spec.training, spec.seed, examples)}
    train(spec.model, model_path, examples, spec.training, spec.seed, path, show_progress=show_progress,
          identity=identity, guard=ensure_claim,
          callbacks=[StepProgress(start, hooks.advance, lambda loss: hooks.note(f"loss {loss:.4g}"))])
    ensure_claim()
    write_status(path, "done")
    mark_done(path, TRAIN_OUTPUTS)


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
        recheck_lineage(trained / "mixture", examples)
    tokenizer, model = load_for_evaluation(spec.model, model_path, trained / "final" if trained else None,
                                           spec.evaluation)
    hooks.stage(f"evaluate {spec.slug}", len(examples))
    predictions, metrics = evaluate(model, tokenizer, examples, spec.evaluation, spec.languages, hooks.advance)
    write_eval_outputs(spec, path, study, predictions, metrics, scorer)


def _guarded(path: Path, work: Callable[[], None]) -> str:
    """Run `work` under the run's claim: 'done' | 'skipped' | 'busy' | 'failed'."""
    if run_state(path) == "done":
        return "skipped"
    claim = try_claim(path)
    if claim is None:
        return "busy"
    with claim:
        if run_state(path) == "done":  # finished by another driver between the check and the claim
            return "skipped"
        (path / "DONE").unlink(missing_ok=True)  # a corrupt run is redone
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
            hooks, show_train_progress))
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


def _prepare(cfg: StudyConfig, record: bool = True, source=None) -> list[Job]:
    """The study's jobs, once every mixture they train is known to fit its pool (`check_budgets`, unless
    re-evaluating: `record` False). `record` writes the resolved config as the study's `study.yaml` (what `plan
    --from`, `query` and `report` on the study directory read). Only `study run` records: a re-evaluation with
    overrides does not redefine the study."""
    jobs = expand(cfg)
    if record:  # a re-evaluation trains nothing
        check_budgets(source or open_source(cfg.data), [(j.train.task, j.train.mixture()) for j in jobs if j.train],
                      cfg.budget)
    root = study_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    if record:
        dump_resolved(cfg, root / "study.yaml")
    return jobs


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """A local worker ends when its study driver does: a driver killed with SIGKILL cannot stop its pool, whose
    workers would otherwise go on with the study, then wait forever for work. The run a worker held is left
    interrupted, and resumes like any other."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, name="langmix-parent-watch", daemon=True).start()


# A `--workers` process's state: the queue its progress goes to the driver by (None: not relayed), whether a job
# runs, whether the study is being stopped (`_worker_sigint`)
_WORKER = {"events": None, "in_job": False, "stopping": False}


def _start_worker(parent: int, events=None) -> None:
    """What each `--workers` process runs first: it ends with its driver, and relays its progress to `events`."""
    _WORKER["events"] = events
    _exit_with_parent(parent)
    signal.signal(signal.SIGINT, _worker_sigint)


class _Relay:
    """A worker's hooks: its stages, step or item counts and notes are put on the driver's queue, counts and notes
    at most every `interval_s` (a step adds to a counter; the queue's own thread writes the pipe, so the work never
    waits for the driver)."""

    def __init__(self, events, interval_s: float = 0.5) -> None:
        self.events, self.interval_s, self.pid = events, interval_s, os.getpid()
        self.pending, self.text, self.sent = 0, None, 0.0

    def stage(self, name: str, total: int) -> None:
        self.flush()
        self.events.put((self.pid, "stage", (name, total)))

    def advance(self, k: int) -> None:
        self.pending += k
        if time.monotonic() - self.sent >= self.interval_s:
            self.flush()

    def note(self, text: str) -> None:
        self.text = text
        if time.monotonic() - self.sent >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.events.put((self.pid, "advance", (self.pending,)))
            self.pending = 0
        if self.text is not None:
            self.events.put((self.pid, "note", (self.text,)))
            self.text = None
        self.sent = time.monotonic()

    def hooks(self) -> Hooks:
        return Hooks(stage=self.stage, advance=self.advance, note=self.note)


class _WorkerProgress:
    """The driver's side of the relay: a thread that hands each worker's events to that worker's hooks
    (`hooks.worker(i)`, i numbering the workers as they first report). Entered before the pool and left after it,
    so it reads until every worker has exited (a worker's queue flushes at exit)."""

    def __init__(self, hooks: Hooks, mp_context) -> None:
        self.hooks, self.events = hooks, mp_context.Queue()
        self._lanes: dict[int, Hooks] = {}
        self._thread = threading.Thread(target=self._relay, name="langmix-progress-relay", daemon=True)

    def _relay(self) -> None:
        while (event := self.events.get()) is not None:
            pid, method, args = event
            if pid not in self._lanes:
                self._lanes[pid] = self.hooks.worker(len(self._lanes))
            try:
                getattr(self._lanes[pid], method)(*args)
            except Exception:  # a display fault must not stop the study (nor this relay, which the workers need)
                log.debug("progress hook %s failed", method, exc_info=True)

    def __enter__(self) -> _WorkerProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.events.put(None)
        self._thread.join(timeout=30)
        self.events.close()


def _worker_sigint(signum, frame) -> None:
    """A worker's first SIGINT (Ctrl-C, or the driver stopping the study) stops its job like Ctrl-C stops a run:
    the run is left interrupted and its claim released; later ones are ignored, so they cannot cut that short, and
    the worker takes no further job."""
    if _WORKER["stopping"]:
        return
    _WORKER["stopping"] = True
    if _WORKER["in_job"]:
        raise KeyboardInterrupt


def _job_in_process(cfg_json: str, index: int) -> dict[str, str]:
    if _WORKER["stopping"]:
        raise KeyboardInterrupt("the study was interrupted")
    cfg = StudyConfig.model_validate_json(cfg_json)
    _quiet_library_progress()
    _freeze_long_lived("study")
    relay = _Relay(_WORKER["events"]) if _WORKER["events"] is not None else None
    _WORKER["in_job"] = True
    try:
        return run_job(cfg, expand(cfg)[index], hooks=relay.hooks() if relay else None)
    finally:
        _WORKER["in_job"] = False
        if relay:
            relay.flush()


def _stop_workers(pool, futures: list, grace_s: float = 30.0) -> None:
    """The driver was interrupted: cancel the jobs not started, SIGINT the workers (their runs stop, left
    interrupted and resumable), wait `grace_s` for them, kill what is left (its run resumes as well)."""
    from concurrent.futures import wait

    for fut in futures:
        fut.cancel()
    workers = list(getattr(pool, "_processes", {}).values())  # the pool has no public handle on its processes
    for proc in workers:
        try:
            os.kill(proc.pid, signal.SIGINT)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.monotonic() + grace_s
    wait(futures, timeout=grace_s)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("worker %s did not stop within %.0f s of SIGINT: killed", proc.pid, grace_s)
            proc.kill()
            proc.join(5)


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
    finished_eval_dirs(cfg, ctx.source)  # runs judged by an older scorer are re-scored before any table is built
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
        relay = _WorkerProgress(hooks, spawn) if hooks.worker is not None else contextlib.nullcontext()
        with relay:  # entered before the pool and left after it: it reads until every worker has exited
            pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker,
                                       initargs=(os.getpid(), getattr(relay, "events", None)))
            futures, interrupted = [], False
            try:
                futures += [pool.submit(_job_in_process, cfg.model_dump_json(), i) for i in range(len(jobs))]
                for done, fut in enumerate(as_completed(futures)):
                    results.append(fut.result())
                    hooks.run_started(f"{done + 1} of {len(jobs)} jobs finished", done + 1, len(jobs))
            except KeyboardInterrupt:  # SIGINT to the driver alone: without this, it waited for every run to finish
                interrupted = True
                _stop_workers(pool, futures)
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


def study_status(cfg: StudyConfig) -> list[tuple[str, object, str, Path]]:
    """(kind, spec, state, directory) for every train and eval run of the study."""
    out: list[tuple[str, object, str, Path]] = []
    for job in expand(cfg):
        trained = None
        if job.train is not None:
            trained = run_state(train_dir(cfg, job.train))
            out.append(("train", job.train, trained, train_dir(cfg, job.train)))
        for ev in job.evals:
            state = run_state(eval_dir(cfg, ev))
            if state == "pending" and trained == "failed":  # it cannot start until its training is redone
                state = "blocked"
            out.append(("eval", ev, state, eval_dir(cfg, ev)))
    return out


def finished_eval_dirs(cfg: StudyConfig, source=None) -> list[Path]:
    """Evaluation runs of the current grid whose outputs are complete and verified, judged by the current scorer:
    where every table, the report, `query` and `plan` find a study's finished runs, so a finished run judged by an
    older scorer is re-scored here first, from its stored outputs (`rescore_stale`)."""
    finished = [(spec, p) for kind, spec, state, p in study_status(cfg) if kind == "eval" and state == "done"]
    return rescore_stale(cfg, finished, source)


def study_tables(cfg: StudyConfig):
    """DuckDB connection with `results` and `items` views over the finished runs of the study."""
    return connect(finished_eval_dirs(cfg))


def evaluate_study(cfg: StudyConfig, hooks: Hooks | None = None) -> dict[str, list[str]]:
    """Evaluate every model of the study that has finished training (and the base models) under the current
    evaluation settings; never trains. Evaluations already done with these settings are skipped."""
    hooks, jobs = hooks or Hooks(), _prepare(cfg, record=False)
    _quiet_library_progress()
    ctx = Context(cfg)
    finished_eval_dirs(cfg, ctx.source)  # those skipped below are judged by the current scorer too
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
