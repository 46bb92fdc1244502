"""Run a study on a SLURM cluster through submitit: one array task per job (train + its evaluations).

Each task claims its runs like a local worker does, so re-submitting a study, or a driver on another node, never
repeats finished work. The submitted callable (`slurm_job.StudyJob`) is a `submitit.helpers.Checkpointable`: on
preemption or time-out SLURM signals it, submitit requeues the same call, and training resumes from its newest
checkpoint with the same data order (the sampler is seeded); after `launcher.max_requeues` time-outs the next one
fails the run in progress (`TimedOut`). Job ids are recorded in `<study>/slurm/jobs.json` for `status` and `cancel`,
under a lock (`jobs.lock`) held from reading it to writing it: two submissions of one study at once submit each
job once. Runs that need several GPUs (full fine-tuning of large models) train under `accelerate launch` with
FSDP; the command and its config are written beside the run and shown by `--dry-run`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from langmix.config import StudyConfig
from langmix.errors import UserInputError
from langmix.study.estimate import Resources, resources
from langmix.study.grid import Job, expand
from langmix.study.runner import study_dir, train_dir
# what a job runs; StudyJob also under this name for jobs submitted before it moved to slurm_job.py
from langmix.study.slurm_job import StudyJob, accelerate_command, fsdp_config  # noqa: F401

log = logging.getLogger(__name__)


def executor_parameters(cfg: StudyConfig, res: Resources) -> dict[str, Any]:
    launcher = cfg.launcher
    params: dict[str, Any] = {"timeout_min": res.timeout_min, "cpus_per_task": res.cpus, "mem_gb": res.mem_gb,
                              "slurm_array_parallelism": launcher.array_parallelism, "nodes": 1,
                              "tasks_per_node": 1, "name": f"langmix-{cfg.name}"}
    if res.gpus:
        params["gpus_per_node"] = res.gpus
    for field, env in (("partition", "LANGMIX_SLURM_PARTITION"), ("account", "LANGMIX_SLURM_ACCOUNT"),
                       ("qos", "LANGMIX_SLURM_QOS")):
        value = getattr(launcher, field) or os.environ.get(env)
        if value:
            params[f"slurm_{field}"] = value
    params.update(launcher.extra)
    return params


def _jobs_file(cfg: StudyConfig) -> Path:
    return study_dir(cfg) / "slurm" / "jobs.json"


def _jobs_lock(cfg: StudyConfig):
    from langmix.study.state import exclusive_lock

    return exclusive_lock(_jobs_file(cfg).with_name("jobs.lock"), f"{cfg.name}: waiting for another submission "
                          "(or cancel) of this study to finish")


def _read_record(cfg: StudyConfig) -> dict[str, list[str]]:
    """jobs.json: {job slug: [job id, ...]}, the newest last; an older job id stays until SLURM says it ended.
    (Files of the earlier format, {job slug: job id}, read the same.) A damaged one is read as empty, with a warning:
    `cancel` and `status` then cannot see the jobs it named (squeue can: `squeue -u $USER`)."""
    path = _jobs_file(cfg)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raw = None
    if not isinstance(raw, dict):
        log.warning("%s is damaged and read as empty: jobs it named are not seen by cancel or status (squeue lists "
                    "them)", path)
        return {}
    return {str(slug): [str(i) for i in ids] if isinstance(ids, list) else [str(ids)]
            for slug, ids in raw.items() if ids}


def read_job_ids(cfg: StudyConfig) -> dict[str, str]:
    """{job slug: its newest job id}."""
    return {slug: ids[-1] for slug, ids in _read_record(cfg).items()}


def recorded_job_ids(cfg: StudyConfig) -> list[str]:
    """Every job id recorded for the study: each job's newest, and older ones SLURM has not said ended."""
    return sorted({job_id for ids in _read_record(cfg).values() for job_id in ids})


def plan_submission(cfg: StudyConfig, jobs: list[Job]) -> list[tuple[Resources, list[Job]]]:
    """Jobs grouped by the resources they ask for: one job array per group."""
    groups: dict[Resources, list[Job]] = {}
    for job in jobs:
        groups.setdefault(resources(job, cfg), []).append(job)
    return list(groups.items())


def _to_submit(cfg: StudyConfig, jobs: list[Job], record: dict[str, list[str]], states: dict[str, str],
               run_states: dict[Path, str] | None = None) -> tuple[list[Job], dict[str, list[str]]]:
    """The jobs `submit` submits (unfinished, no job of theirs queued or running), and {slug: live job ids} of the
    unfinished jobs it leaves to the job already queued or running (a second would only wait for its claim).
    `run_states`: {run directory: state} where the caller has read them (each read verifies the run's files)."""
    from langmix.study.state import run_state

    known = run_states or {}
    todo = [j for j in jobs if any((known.get(p) or run_state(p)) != "done" for p in _job_dirs(cfg, j))]
    live = {j.slug: ids for j in todo if (ids := [i for i in record.get(j.slug, []) if states.get(i) in LIVE_STATES])}
    return [j for j in todo if j.slug not in live], live


def _live_text(live: dict[str, list[str]]) -> str:
    return ", ".join(f"{slug} ({' '.join(ids)})" for slug, ids in live.items())


def dry_run(cfg: StudyConfig, jobs: list[Job], run_states: dict[Path, str] | None = None) -> str:
    """What `submit` would do: the arrays of the unfinished jobs with their parameters, and for multi-GPU runs the
    accelerate command and FSDP config; finished jobs are counted and jobs already queued or running named, not
    listed in arrays (submit skips both). `study run --dry-run` passes the jobs (and their runs' states) that
    `preflight.preflight` checked first."""
    record = _read_record(cfg)
    todo, live = _to_submit(cfg, jobs, record, queue_states(sorted({i for ids in record.values() for i in ids})),
                            run_states)
    finished = len(jobs) - len(todo) - len(live)
    lines = [f"{finished} of {len(jobs)} jobs are finished and would not be submitted"] if finished else []
    if live:
        lines.append(f"{len(live)} of {len(jobs)} jobs are already queued or running and would not be submitted "
                     f"again: {_live_text(live)}")
    for res, group in plan_submission(cfg, todo):
        lines.append(f"job array of {len(group)}: {json.dumps(executor_parameters(cfg, res), sort_keys=True)}")
        for job in group:
            lines.append(f"  {job.slug}")
            if job.train is not None and res.gpus > 1:
                path = train_dir(cfg, job.train)
                cmd = accelerate_command(cfg, job, path / "fsdp.yaml", path / "study.json")
                lines.append(f"    $ {shlex.join(cmd)}")
                lines.append("    fsdp.yaml: " + json.dumps(fsdp_config(res.gpus), sort_keys=True))
    return "\n".join(lines)


def submit(cfg: StudyConfig, jobs: list[Job] | None = None) -> list:
    """Submit the study's unfinished jobs as job arrays; returns the submitit jobs.

    From reading jobs.json to writing it, the study's job lock is held: a second submission at once (another
    driver, another shell) waits, then finds the first one's jobs queued and submits none of them again. A job's
    earlier ids are kept until SLURM says they ended (not where squeue and sacct cannot tell), so `cancel` and
    `status` see every job that may still run."""
    from langmix.study.runner import _prepare

    all_jobs = _prepare(cfg) if jobs is None else jobs
    with _jobs_lock(cfg):
        record = _read_record(cfg)
        states = queue_states(sorted({job_id for ids in record.values() for job_id in ids}))
        # a job SLURM says ended is dropped, except each job's newest (`status` shows how it ended)
        ended = {job_id for job_id, state in states.items() if not _unsettled(state)}
        record = {slug: [i for i in ids[:-1] if i not in ended] + ids[-1:] for slug, ids in record.items()}
        todo, live = _to_submit(cfg, all_jobs, record, states)
        if live:
            log.warning("%d jobs are already queued or running and are not submitted again: %s", len(live),
                        _live_text(live))
        return _submit_arrays(cfg, todo, record, ended)


def _executor(cfg: StudyConfig, res: Resources):
    import submitit

    executor = submitit.AutoExecutor(folder=study_dir(cfg) / "slurm" / "logs", cluster="slurm",
                                     slurm_max_num_timeout=cfg.launcher.max_requeues)
    executor.update_parameters(**executor_parameters(cfg, res))
    return executor


def _submit_arrays(cfg: StudyConfig, todo: list[Job], record: dict[str, list[str]], ended: set[str]) -> list:
    """One job array per resource shape; each array's ids are added to `record` (replacing a job's ids that
    `ended`) and written as soon as it is submitted (a later refusal loses none)."""
    from langmix.study.state import write_json_atomic

    submitted: list = []
    cfg_json = cfg.model_dump_json()
    _jobs_file(cfg).parent.mkdir(parents=True, exist_ok=True)
    for res, group in plan_submission(cfg, todo):
        executor = _executor(cfg, res)
        try:
            with executor.batch():
                handles = [executor.submit(StudyJob(), cfg_json, job.slug) for job in group]
        except Exception as exc:  # sbatch refused the array (a bad partition, a resource the cluster lacks)
            done = f"; {len(submitted)} jobs of earlier arrays were submitted and are recorded" if submitted else ""
            raise SubmissionError(f"sbatch refused a job array of {len(group)}: {_sbatch_reason(exc)}{done}") \
                from None
        for job, handle in zip(group, handles):
            record[job.slug] = [i for i in record.get(job.slug, []) if i not in ended] + [str(handle.job_id)]
        submitted += handles
        write_json_atomic(_jobs_file(cfg), record, flush=True)  # lost, `cancel` would miss running jobs
    return submitted


LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "SUSPENDED", "COMPLETING", "RESIZING")


class SubmissionError(UserInputError):
    """SLURM refused a submission; the message carries sbatch's reason."""


def _sbatch_reason(exc: Exception) -> str:
    """sbatch's own error lines out of submitit's exception (which wraps the command and its output)."""
    lines = [line.strip() for line in str(exc).splitlines() if "error" in line.lower()]
    return " ".join(dict.fromkeys(lines)) or str(exc).strip().splitlines()[-1]


def _job_dirs(cfg: StudyConfig, job: Job) -> list[Path]:
    from langmix.study.runner import eval_dir

    dirs = [train_dir(cfg, job.train)] if job.train else []
    return dirs + [eval_dir(cfg, e) for e in job.evals]


def queue_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's view of the given jobs (PENDING, RUNNING, REQUEUED, COMPLETED, FAILED, ...): squeue for live jobs,
    sacct for finished ones where accounting is on. Jobs neither knows are left out."""
    if not job_ids:
        return {}
    states: dict[str, str] = {}
    try:
        # -r: one line per array task (without it, pending tasks of an array merge into one `123_[0-2]` line)
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(job_ids)], capture_output=True,
                             text=True, timeout=30).stdout
        for line in out.splitlines():
            jid, state = line.split()[:2]
            states[jid] = state
    except (OSError, subprocess.SubprocessError, ValueError):
        return states
    missing = [j for j in job_ids if not any(k == j or k.startswith(j + "_") for k in states)]
    if missing:
        try:
            out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(missing)],
                                 capture_output=True, text=True, timeout=30).stdout
            for line in out.splitlines():
                jid, state = (line.split("|") + [""])[:2]
                states.setdefault(jid, state.split()[0] if state else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return states


# where SLURM (or submitit, before its first sacct answer) names one of these, the job has not ended for it yet
UNSETTLED_STATES = (*LIVE_STATES, "UNKNOWN", "READY", "PREEMPTED", "")


def _unsettled(state: str) -> bool:
    return (state.split() or [""])[0] in UNSETTLED_STATES  # sacct writes e.g. "CANCELLED by 0"


def final_states(cfg: StudyConfig, handles: list, settle_s: float = 10.0) -> dict[str, str]:
    """{job id: final state} of submitted jobs that have ended (their result files exist), read fresh from sacct.

    A handle's `state` answers from submitit's cached sacct snapshot, refreshed at most every min(10 min, half the
    time since the last submission): by the time a long job's result file appears it may still say RUNNING. One
    forced sacct call refreshes every job at once. Where SLURM has no final state yet (its accounting lags a job's
    end by a few seconds, or is off), the job's runs decide: COMPLETED when every one of them is done (a job that
    returns has finished all its runs), else SLURM's state once `settle_s` has passed."""
    from langmix.study.state import run_state

    if not handles:
        return {}
    by_id = {job_id: slug for slug, ids in _read_record(cfg).items() for job_id in ids}
    jobs = {j.slug: j for j in expand(cfg)}

    verified: set[str] = set()  # jobs whose runs were found done (their files hashed once, not every poll)

    def runs_done(job_id: str) -> bool:
        job = jobs.get(by_id.get(job_id, ""))
        if job_id not in verified and job is not None and all(run_state(p) == "done" for p in _job_dirs(cfg, job)):
            verified.add(job_id)
        return job_id in verified

    states: dict[str, str] = {}
    deadline = time.monotonic() + settle_s
    while True:
        handles[0].get_info(mode="force")  # one sacct call for every job the watcher has not seen end
        for handle in handles:
            job_id = str(handle.job_id)
            state = handle.get_info(mode="cache").get("State") or "UNKNOWN"
            if _unsettled(state) and runs_done(job_id):
                log.info("job %s: SLURM says %s, but its runs are done: completed", job_id, state)
                state = "COMPLETED"
            states[job_id] = state
        if not any(_unsettled(s) for s in states.values()) or time.monotonic() >= deadline:
            return states
        time.sleep(1)


def cancel(cfg: StudyConfig) -> list[str]:
    """scancel every recorded job of the study that SLURM still knows; returns their ids. Under the study's job
    lock: a submission in progress finishes first, and its jobs are cancelled too. A study never submitted (no
    record, no lock: a submission takes the lock before it records a job) has nothing to cancel, and nothing is
    created for it (no `slurm/` directory, no lock file)."""
    if not _jobs_file(cfg).exists() and not _jobs_file(cfg).with_name("jobs.lock").exists():
        return []
    with _jobs_lock(cfg):
        live = [j for j, s in queue_states(recorded_job_ids(cfg)).items() if s in LIVE_STATES]
        if live:
            subprocess.run(["scancel", *live], check=False)
    return live


def job_errors(cfg: StudyConfig, job_id: str, jobs: list[Job] | None = None) -> list[str]:
    """'train/<slug>: <error>' for each run of a job whose last attempt failed (from its status.json)."""
    from langmix.study.runner import eval_dir
    from langmix.study.state import read_status

    slug = next((s for s, ids in _read_record(cfg).items() if job_id in ids), None)
    job = next((j for j in (expand(cfg) if jobs is None else jobs) if j.slug == slug), None)
    if job is None:
        return []
    runs = [("train", job.train, train_dir(cfg, job.train))] if job.train else []
    runs += [("eval", ev, eval_dir(cfg, ev)) for ev in job.evals]
    errors = []
    for kind, spec, path in runs:
        status = read_status(path) or {}
        if status.get("state") == "failed":
            first = (str(status.get("error") or "").strip().splitlines() or ["(no error recorded)"])[0]
            errors.append(f"{kind}/{spec.slug}: {first}")
    return errors


def log_tail(cfg: StudyConfig, slug: str, lines: int = 20) -> str:
    """The last lines of a job's SLURM log (stderr then stdout), for failure reports."""
    jid = read_job_ids(cfg).get(slug)
    if not jid:
        return ""
    folder = study_dir(cfg) / "slurm" / "logs"
    text = []
    for suffix in ("err", "out"):
        for f in sorted(folder.glob(f"{jid}*_log.{suffix}")):
            text += f.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text[-lines:])
