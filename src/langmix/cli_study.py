"""The study-level commands: `study run|status|cancel|plan` (registered on the app of `langmix.cli`); the commands
that read a study's tables (`report`, `query`, `plan`) are in `cli_results`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from langmix.cli import OVERRIDES, _config, _model_progress, _progress, _setup, check_output, console, error, study_app
from langmix.config import StudyConfig
from langmix.errors import UserInputError


def _study_config(path: Path, overrides: list[str] | None = None) -> StudyConfig:
    """The study named by `path`: its config file, or its output directory (holding the `study.yaml` every study
    writes there). A directory that was moved or copied is read where it is now: its study.yaml's output_dir is
    pointed at the directory's parent (the run directories' names do not depend on it)."""
    if not path.is_dir():
        return _config(path, overrides)
    if not (path / "study.yaml").is_file():
        error(f"{path} is a directory without a study.yaml: give a study config file or a study's output directory")
        raise typer.Exit(2)
    cfg = _config(path / "study.yaml", overrides)
    from langmix.study.runner import study_dir

    if study_dir(cfg).resolve() != path.resolve() and not any(o.startswith("output_dir=") for o in overrides or []):
        if cfg.name != path.name:
            error(f"{path}/study.yaml names the study {cfg.name!r}, not {path.name!r}: give the study's config file")
            raise typer.Exit(2)
        cfg = cfg.model_copy(update={"output_dir": str(path.resolve().parent)})
    return cfg


def _left_out(runs: list, shown: int = 8, rescoring: dict[Path, str] | None = None) -> str | None:
    """'2 of 5 planned evaluations (2 pending): a/b/c/s0, ...; `langmix study status` shows each', or None when
    every planned evaluation is done: the runs no table or figure includes (failed, corrupt, pending, ...), and the
    finished ones the table was built without (`rescoring`: from `finished_eval_dirs`, e.g. being re-scored by
    another process), among the study's evaluation runs (`runs`, from `study_status`)."""
    from collections import Counter

    rescoring = rescoring or {}
    evals = [(spec, rescoring.get(path, "done") if state == "done" else state)
             for kind, spec, state, path in runs if kind == "eval"]
    missing = [(spec, state) for spec, state in evals if state != "done"]
    if not missing:
        return None
    states = Counter(state for _, state in missing)
    names = ", ".join(f"{spec.model.name}/{spec.mixture_name}/{spec.task}/s{spec.seed}"
                      for spec, _ in missing[:shown])
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    more = " ..." if len(missing) > shown else ""
    return (f"{len(missing)} of {len(evals)} planned evaluations ({counts}): {names}{more}; `langmix study status` "
            "shows each")


def _other_evals(cfg: StudyConfig, runs: list, shown: int = 3) -> tuple[str | None, int]:
    """('2 finished evaluations in <study>/eval are not in this config's grid: a, b; made under ...', 2), or (None,
    0): the finished evaluation runs (a DONE file) in the study directory whose names are none of this grid's
    (`runs`, from `study_status`), e.g. made by `eval --study -s evaluation.X=...`, which records no override. A
    directory listing, nothing verified or hashed."""
    from langmix.study.runner import study_dir
    from langmix.study.state import DONE

    root = study_dir(cfg) / "eval"
    planned = {path.name for kind, _, _, path in runs if kind == "eval"}
    try:
        others = sorted(p.name for p in root.iterdir() if p.name not in planned and (p / DONE).exists())
    except OSError:  # no eval directory yet
        return None, 0
    if not others:
        return None, 0
    many = len(others) > 1
    names = ", ".join(others[:shown]) + (" ..." if len(others) > shown else "")
    return (f"{len(others)} finished evaluation{'s' if many else ''} in {root} {'are' if many else 'is'} not in this "
            f"config's grid: {names}; made under other settings (-s overrides, an earlier config, data since "
            "changed, or a langmix whose run keys differed): pass the same overrides to include them"), len(others)


def _unfitted_runs(con, shown: int = 3) -> str | None:
    """'2 evaluations were generated before ...', or None: where some evaluations' items exceeded the model's
    context (`context_exceeded` > 0: their answers were cut to fit it), the evaluations with no `context_exceeded`
    rows were generated before langmix fitted answers to the context, so theirs may run past it: one study would
    compare the two behaviours."""
    rows = con.execute("SELECT run_hash, bool_or(metric = 'context_exceeded'), "
                       "bool_or(metric = 'context_exceeded' AND value > 0) FROM results GROUP BY run_hash "
                       "ORDER BY run_hash").fetchall()
    unfitted = [run for run, flagged, _ in rows if not flagged]
    over = [run for run, _, exceeded in rows if exceeded]
    if not unfitted or not over:
        return None
    names = ", ".join(unfitted[:shown]) + (" ..." if len(unfitted) > shown else "")
    n_over = f"{len(over)} evaluation{'s' if len(over) > 1 else ''}"
    return (f"{len(unfitted)} evaluation{'s' if len(unfitted) > 1 else ''} ({names}) generated before answers were "
            f"fitted to the model's context, beside {n_over} with items whose prompt and answer exceed it "
            "(results metric context_exceeded): the older ones' answers to such items ran past the context; "
            "evaluate them again (remove their directories, then `study run`) to compare like with like")


@dataclass
class TableCaveats:
    """What a table built from a study's finished runs leaves out or mixes, each a line or None: planned
    evaluations not in it (`_left_out`), finished ones this grid does not name (`_other_evals`), and evaluations
    from before context fitting beside ones that exceeded the context (`_unfitted_runs`)."""

    left_out: str | None
    other: str | None
    unfitted: str | None
    n_other: int = 0  # the finished evaluations `other` names


def _finished_tables(cfg: StudyConfig, shown: int = 8):
    """(finished evaluation directories, DuckDB views `results` and `items` over them, their `TableCaveats`), as
    `report`, `query` and `plan` read a study: each run's state (which verifies its files) is read once."""
    from langmix.results import connect
    from langmix.study.runner import finished_eval_dirs, study_status

    rescoring: dict[Path, str] = {}
    runs = study_status(cfg, evals_only=True)
    finished = finished_eval_dirs(cfg, left_out=rescoring, runs=runs)
    con = connect(finished)
    other, n_other = _other_evals(cfg, runs)
    return finished, con, TableCaveats(_left_out(runs, shown, rescoring), other, _unfitted_runs(con), n_other)


def warn(message: str) -> None:
    """One yellow line on stderr (not rich markup, not wrapped), beside a command's output on stdout."""
    console.print(Text(str(message), style="yellow"), soft_wrap=True)


def _report(cfg: StudyConfig) -> tuple[Path | None, TableCaveats]:
    """Build the report from the study's finished runs (never from a stale table), under an exclusive lock on the
    report directory: several `study run` drivers of one study each build it when they end, and two builds at once
    removed and wrote the same files (one died in the other's clean-up). The tables are read under the lock too, so
    the last build reads the newest runs. The path is None where no run of this grid has finished."""
    from langmix.report import build_report
    from langmix.study.runner import study_dir
    from langmix.study.state import exclusive_lock

    out = study_dir(cfg) / "report"
    if not (study_dir(cfg) / "eval").is_dir():  # no evaluation ever ran: nothing to build, and nothing is created
        _, _, caveats = _finished_tables(cfg)  # (no report/ directory or lock in a study that may not exist)
        return None, caveats
    with exclusive_lock(out / ".lock", f"{cfg.name}: waiting for another build of this report to finish"):
        _, tables, caveats = _finished_tables(cfg)
        if caveats.other:  # e.g. a re-evaluation under `-s evaluation.X=...`, which this config's grid does not name
            warn(f"not in this report: {caveats.other}")
        items = tables.execute("SELECT * FROM items").df()
        if items.empty:
            return None, caveats
        notes = [f"API calls checked in `{cfg.evaluation.api_checker}` mode of langmix's AST checker"
                 if "api" in cfg.tasks else ""]
        if caveats.left_out:  # a planned run that failed or has not finished is not in any figure: say which
            notes.append(f"Not in this report: {caveats.left_out}")
        if caveats.unfitted:
            notes.append(f"Warning: {caveats.unfitted}")
            warn(caveats.unfitted)
        note = ". ".join(n for n in notes if n)
        return build_report(items, out, title=f"langmix study: {cfg.name}", config_note=note), caveats


STUDY = typer.Argument(..., help="the study's config file or its output directory (holding the study.yaml it wrote)")


@study_app.command("run")
def study_run(config: Path = STUDY, overrides: Optional[list[str]] = OVERRIDES,
              report: bool = typer.Option(True, help="build the report when the study finishes"),
              launcher: Optional[str] = typer.Option(None, help="local | slurm (default: the config's "
                                                     "launcher.kind)"),
              workers: Optional[int] = typer.Option(None, min=1, help="local: runs at once (default "
                                                    "launcher.workers)"),
              dry_run: bool = typer.Option(False, "--dry-run", help="run nothing, after the checks a real run makes "
                                           "before training (data, budgets, each mixture's overlap with the eval "
                                           "set): slurm: print the job arrays, resources and multi-GPU commands; "
                                           "local: list the runs still to do"),
              wait: bool = typer.Option(True, help="slurm: wait for the jobs and then build the report")) -> None:
    """Run every unfinished run of a study (finished runs are skipped; interrupted ones resume). Given the study's
    output directory, it runs the study as its study.yaml records it (the config of its last `study run`)."""
    _setup()
    from langmix.study.runner import Hooks, run_study, study_dir

    cfg = _study_config(config, overrides)
    check_output(study_dir(cfg), "output_dir")
    kind = launcher or cfg.launcher.kind
    if kind not in ("local", "slurm"):
        error(f"--launcher must be local or slurm, got {kind!r}")
        raise typer.Exit(2)
    if kind == "slurm":
        failed_jobs = _run_slurm(cfg, dry_run, wait)
        outcome = {"failed": failed_jobs, "blocked": []} if failed_jobs else None
    elif dry_run:  # the checks a real run makes before training (data, budgets, lineage); nothing is written
        from langmix.study.preflight import preflight

        _, runs = preflight(cfg)
        todo = [(kind_, path.name, state) for kind_, _, state, path in runs if state != "done"]
        for kind_, name, state in todo:
            print(f"{kind_:<6} {state:<12} {name}")
        print(f"{len(todo)} of {len(runs)} runs to do (local launcher, --dry-run: nothing was run)")
        return
    else:
        with _progress() as progress, _model_progress(progress) as update:
            runs = progress.add_task("runs", total=None)
            jobs = {"n": 0}

            def run_started(slug, i, n):
                jobs["n"] = n
                progress.update(runs, total=n, completed=i, description=f"job {min(i + 1, n)}/{n}: {slug}")

            main, lanes = _StageLine(progress), {}

            def worker(i: int) -> Hooks:  # --workers: a line per worker process
                return lanes.setdefault(i, _StageLine(progress, f"w{i + 1} ")).hooks()

            outcome = run_study(cfg, main.hooks(run_started=run_started, worker=worker), model_progress=update,
                                workers=workers)
            progress.update(runs, completed=jobs["n"], description="runs")
        console.print(", ".join(f"{k} {len(v)}" for k, v in outcome.items()))
        for name in outcome["failed"]:
            error(f"not finished: {name} (see its status.json)")
        for name, train in _blocked_by(cfg, outcome["blocked"]).items():  # never started: no status.json of its own
            error(f"blocked: {name}: its training {train + ' ' if train else ''}failed (see that run's status.json)")
        for name in outcome["busy"]:
            console.print(f"[yellow]held by another driver: {name}[/yellow]")
    if report and not dry_run:
        path, _ = _report(cfg)
        if path:
            print(path)  # on stdout, for scripts; the log line on stderr says the same
    raise typer.Exit(1 if outcome and (outcome["failed"] or outcome["blocked"]) else 0)


def _blocked_by(cfg: StudyConfig, blocked: list[str]) -> dict[str, str | None]:
    """{"eval/<slug>": "train/<slug>"}: the training each blocked evaluation waits for (None: not in the grid as
    expanded now, e.g. its data changed during the run)."""
    if not blocked:
        return {}
    from langmix.study.grid import expand

    trains = {f"eval/{ev.slug}": f"train/{job.train.slug}" for job in expand(cfg) if job.train for ev in job.evals}
    return {name: trains.get(name) for name in blocked}


class _StageLine:
    """One line of the study's display: the stage a process is at (a training run's steps of its total, with the
    latest logged loss; an evaluation's items). A stage started again with its total (training, once the trainer
    knows its steps) keeps its line, its count and clock starting over."""

    def __init__(self, progress, prefix: str = "") -> None:
        self.progress, self.prefix, self.id, self.name = progress, prefix, None, ""

    def stage(self, name: str, total: int) -> None:
        self.name, description = name, f"  {self.prefix}{name}"
        if self.id is None:
            self.id = self.progress.add_task(description, total=total or None)
            return
        self.progress.reset(self.id, total=total or None, description=description)
        if not total:  # (reset keeps the last stage's total where it is given None)
            next(task for task in self.progress.tasks if task.id == self.id).total = None

    def advance(self, k: int) -> None:
        if self.id is not None:
            self.progress.advance(self.id, k)

    def note(self, text: str) -> None:
        if self.id is not None:
            self.progress.update(self.id, description=f"  {self.prefix}{self.name} ({text})")

    def hooks(self, **extra):
        from langmix.study.runner import Hooks

        return Hooks(stage=self.stage, advance=self.advance, note=self.note, **extra)


FORCED_REFRESH_S = 60.0  # how often a waiting `study run --launcher slurm` asks sacct for its jobs' states


def _run_slurm(cfg: StudyConfig, dry_run: bool, wait: bool) -> list[str]:
    """Submit (or, with dry_run, show) the study's jobs; with wait, wait for them. Returns the jobs that did not
    complete (the study command then exits 1, as a local run with failed runs does)."""
    from langmix.study import slurm
    from langmix.study.grid import expand

    try:
        if dry_run:  # checked as a local dry run is (`preflight`), then the arrays `submit` would submit
            from langmix.study.preflight import preflight

            jobs, runs = preflight(cfg)
            print(slurm.dry_run(cfg, jobs, {path: state for _, _, state, path in runs}))
            return []
        handles = slurm.submit(cfg)
    except (UserInputError, ValueError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    console.print(f"submitted {len(handles)} jobs; ids in {slurm._jobs_file(cfg)}")
    if not wait or not handles:
        return []
    with _progress() as progress:
        bar = progress.add_task("SLURM jobs", total=len(handles))
        pending = list(handles)
        refreshed = time.monotonic()
        while pending:
            if time.monotonic() - refreshed >= FORCED_REFRESH_S:
                # a job that ends without its result file (killed: scancel, out of memory, a lost node) is seen
                # ended only through sacct, which submitit calls at most every 10 minutes on its own
                pending[0].watcher.update()  # one sacct call for every job
                refreshed = time.monotonic()
            still = [h for h in pending if not h.done()]
            progress.advance(bar, len(pending) - len(still))
            pending = still
            time.sleep(2)
    failed = []
    jobs = None
    for job_id, state in slurm.final_states(cfg, handles).items():  # read fresh, not submitit's cached view
        if state != "COMPLETED":
            error(f"job {job_id}: {state} (its runs' status.json and slurm/logs say why)")
            jobs = expand(cfg) if jobs is None else jobs
            for line in slurm.job_errors(cfg, job_id, jobs):  # e.g. "train/<run>: TimedOut: timed out 4 times ..."
                error(f"  {line}")
            failed.append(job_id)
    return failed


@study_app.command("status")
def study_status_cmd(config: Path = STUDY, overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Each run's state, from the run directories: done (outputs verified); done, other scorer (judged by another
    scorer: re-scored from its outputs before any table); running (claimed by a live process); interrupted
    (stopped before finishing: resumes); failed (its status.json holds the error); corrupt (outputs changed since
    DONE: redone); foreign (it holds another run's files, copied or moved over it: set aside and redone); blocked
    (an evaluation whose training failed); pending (not started). Where the study was submitted to a cluster, also
    queued (not started, its job waiting) and requeued (its job requeued), with SLURM's view of each run's job."""
    from langmix.study import slurm
    from langmix.study.grid import expand
    from langmix.study.rescore_stale import is_stale
    from langmix.study.runner import study_status

    cfg = _study_config(config, overrides)
    ids = slurm.read_job_ids(cfg)  # by the job's slug: its training run's (a base model's: its evaluation's)
    jobs = expand(cfg)  # once: a run's key hashes its data files' content
    job_of = {run.slug: job.slug for job in jobs for run in [job.train, *job.evals] if run is not None}
    queue = slurm.queue_states(sorted(set(ids.values()))) if ids else {}
    table = Table("kind", "run", "model", "mixture", "task", "seed", "state", "slurm")
    counts: dict[str, int] = {}
    shown: set[str] = set()
    for kind, spec, state, path in study_status(cfg, jobs):
        shown.add(job_of[spec.slug])
        if kind == "eval" and state == "done" and is_stale(spec, path):
            state = "done, other scorer"  # re-scored (no model) before any table is built from it
        job_id = ids.get(job_of[spec.slug], "")
        slurm_state = queue.get(job_id, "")
        if state in ("pending", "interrupted") and slurm_state in ("PENDING", "REQUEUED"):
            # a run with checkpoints waiting in the queue was requeued (SLURM shows PENDING, reason BeginTime)
            state = "requeued" if slurm_state == "REQUEUED" or state == "interrupted" else "queued"
        if state == "done" and slurm_state and slurm_state not in ("COMPLETED", *slurm.LIVE_STATES):
            slurm_state += " (an earlier job; the run finished since)"
        counts[state] = counts.get(state, 0) + 1
        color = {"done": "green", "failed": "red", "corrupt": "red", "foreign": "red", "running": "yellow",
                 "interrupted": "magenta", "blocked": "red", "done, other scorer": "yellow"}.get(state, "")
        table.add_row(kind, spec.key, spec.model.name, spec.mixture_name, spec.task, str(spec.seed),
                      f"[{color}]{state}[/{color}]" if color else state,
                      f"{job_id} {slurm_state}".strip())
    Console().print(table)
    Console().print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if counts.get("done, other scorer"):
        console.print(f"{counts['done, other scorer']} finished evaluation(s) were judged by another scorer than "
                      "this langmix's: `study run`, `report`, `query` and `plan` re-score them from their stored "
                      "outputs first (no model)")
    if counts.get("foreign"):
        console.print(f"{counts['foreign']} run(s) hold another run's files (a directory copied or moved over theirs: "
                      "its DONE or files name another run): in no table; the next `study run` sets those files "
                      "aside (a foreign-<time> folder inside the run) and redoes the run")
    stale = {slug: job_id for slug, job_id in ids.items() if slug not in shown}
    if stale:  # submitted for runs whose keys changed since (the config, or a data file's content)
        many = len(stale) > 1
        console.print(f"{len(stale)} recorded SLURM job{'s are' if many else ' is'} for runs no longer in this "
                      "study (its config or a data file changed after submitting; a job that found the change "
                      "failed):")
        for slug, job_id in sorted(stale.items()):
            console.print(f"  {slug}  job {job_id} {queue.get(job_id, 'unknown to SLURM now')}")


@study_app.command("cancel")
def study_cancel_cmd(config: Path = STUDY, overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Cancel the study's queued and running SLURM jobs (finished runs stay; a re-run resumes the rest)."""
    from langmix.study import slurm

    cfg = _study_config(config, overrides)
    cancelled = slurm.cancel(cfg)
    console.print(f"cancelled {len(cancelled)} jobs: {' '.join(cancelled)}" if cancelled else "nothing to cancel")


@study_app.command("plan")
def study_plan_cmd(config: Path = STUDY, overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Before submitting: the runs as a table, and GPU-hours per run and in total (6 x params x tokens for
    training, 2 x params x tokens for evaluation, at launcher.mfu of launcher.gpu_peak_tflops)."""
    from langmix.study.estimate import estimate
    from langmix.study.grid import expand

    cfg = _study_config(config, overrides)
    jobs = expand(cfg)
    try:
        rows = estimate(cfg, jobs)
    except ValueError as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    table = Table("kind", "run", "params", "tokens", "GPUs", "GPU-hours")
    for r in rows:
        table.add_row(r.kind, r.slug, (f"{r.params / 1e9:.2f}B" if r.params >= 1e8 else f"{r.params / 1e6:.2f}M"),
                      f"{r.tokens:.3g}", str(r.gpus) if r.gpus else "0 (CPU)", f"{r.gpu_hours:.2f}")
    Console(width=200).print(table)
    trains = [r for r in rows if r.kind == "train"]
    evals = [r for r in rows if r.kind == "eval"]
    seeds = len(cfg.seeds)
    print(f"fine-tuning runs: {len(trains)} ({len(trains) // seeds} per seed x {seeds} seeds); "
          f"evaluation runs: {len(evals)}")
    print(f"GPU-hours: training {sum(r.gpu_hours for r in trains):.1f}, evaluation "
          f"{sum(r.gpu_hours for r in evals):.1f}, total {sum(r.gpu_hours for r in rows):.1f} "
          f"(assumed MFU {cfg.launcher.mfu:.0%} of {cfg.launcher.gpu_peak_tflops:g} TFLOP/s per GPU, "
          f"{cfg.launcher.tokens_per_example} tokens per example; override with -s launcher.mfu=...)")
