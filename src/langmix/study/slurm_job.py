"""What a SLURM job of a study runs: `StudyJob`, the callable submitted for each array task (train + its
evaluations), multi-GPU training under `accelerate launch` with FSDP, and the job's end when its requeues after
time-outs are spent (`TimedOut`). Submitting, recording and querying jobs is `slurm.py`'s.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from langmix.config import StudyConfig
from langmix.study.estimate import resources
from langmix.study.grid import Job, expand
from langmix.study.runner import (_quiet_library_progress, claimed_for_redo, run_job, set_aside_evaluations,
                                  train_dir)
from langmix.study.state import HEARTBEAT_S, ClaimLost

log = logging.getLogger(__name__)

try:  # submitit is a runtime dependency; the import is guarded so `--dry-run` works without it
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover
    Checkpointable = object  # type: ignore[assignment,misc]


class TimedOut(RuntimeError):
    """A job reached its time limit once more after `launcher.max_requeues` requeues: its runs stop, failed."""


class StudyJob(Checkpointable):
    """The callable each array task runs: one job of the study, looked up by its slug."""

    def __call__(self, cfg_json: str, slug: str) -> dict[str, str]:
        _quiet_library_progress()
        cfg = StudyConfig.model_validate_json(cfg_json)
        job = next((j for j in expand(cfg) if j.slug == slug), None)
        if job is None:
            raise ValueError(f"job {slug} is not in study {cfg.name}: its runs are keyed by the config and the "
                             f"contents of its data files, so one of them changed after submitting; run "
                             f"`langmix study run` again to submit the runs as they are now")
        spent = _name_spent_requeues(cfg, resources(job, cfg).timeout_min)
        if job.train is not None and resources(job, cfg).gpus > 1:
            try:
                _train_distributed(cfg, job)
            except ClaimLost as exc:  # another process holds the run now: wait for it below, as for a busy run
                log.error("%s", exc)
        outcome = run_job(cfg, job)
        while "busy" in outcome.values():  # an earlier attempt's claim (e.g. a cancelled job) not yet stale
            time.sleep(HEARTBEAT_S)
            outcome = run_job(cfg, job)
        failed = [name for name, state in outcome.items() if state in ("failed", "blocked")]
        if failed and spent:
            raise TimedOut(f"{spent[0]}; runs not finished: {failed}")
        if failed:  # the run directories hold the errors; the job fails so sacct shows it
            raise RuntimeError(f"runs failed: {failed}")
        return outcome


def _name_spent_requeues(cfg: StudyConfig, timeout_min: int) -> list[str]:
    """Wrap submitit's handler of SLURM's time-limit warning. Once the job's requeues are spent it raises
    UncompletedJobError('... timed-out too many times') wherever the job is (a run then failed with that); raise
    TimedOut instead, saying how often and what to change. Returns a list that then holds the message."""
    import signal

    from submitit.core.job_environment import JobEnvironment
    from submitit.core.utils import UncompletedJobError

    said: list[str] = []
    sig = JobEnvironment._usr_sig()  # the signal submitit asks SLURM for (USR2 unless SUBMITIT_PREEMPT_SIGNAL)
    inner = signal.getsignal(sig)
    if not callable(inner) or threading.current_thread() is not threading.main_thread():
        return said  # not run by submitit (called directly)

    def handler(signum, frame) -> None:
        try:
            inner(signum, frame)
        except UncompletedJobError as exc:
            if "too many" not in str(exc):
                raise
            n = cfg.launcher.max_requeues + 1
            said.append(f"timed out {n} time{'' if n == 1 else 's'} (time limit {timeout_min} min; "
                        f"launcher.max_requeues={cfg.launcher.max_requeues}): raise launcher.timeout_min or "
                        "launcher.max_requeues and run the study again (training resumes from its newest checkpoint)")
            raise TimedOut(said[0]) from exc

    signal.signal(sig, handler)
    return said


def fsdp_config(gpus: int) -> dict[str, Any]:
    """An accelerate FSDP config for one node with `gpus` GPUs (full shard, bf16, transformer-layer wrap)."""
    return {"compute_environment": "LOCAL_MACHINE", "distributed_type": "FSDP", "mixed_precision": "bf16",
            "num_machines": 1, "num_processes": gpus, "machine_rank": 0, "main_training_function": "main",
            "fsdp_config": {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                            "fsdp_cpu_ram_efficient_loading": True, "fsdp_offload_params": False,
                            "fsdp_reshard_after_forward": True, "fsdp_state_dict_type": "SHARDED_STATE_DICT"}}


def accelerate_command(cfg: StudyConfig, job: Job, config_file: Path, study_file: Path) -> list[str]:
    gpus = resources(job, cfg).gpus
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
            "--num_processes", str(gpus), "-m", "langmix.study.distributed", str(study_file), job.slug]


def _train_distributed(cfg: StudyConfig, job: Job) -> None:
    """Train a multi-GPU run under `accelerate launch`, holding the run's claim meanwhile (the launched processes
    hold none): a busy run is left to its owner, and a claim lost while training stops the launch."""
    path = train_dir(cfg, job.train)
    # those of its evaluations made from the files of a training redone (foreign, corrupt) are set aside first
    with claimed_for_redo(path, lambda state: set_aside_evaluations(cfg, job, state)) as (_, claim):
        if claim is None:  # done, or another process trains it (run_job then waits for it like for any busy run)
            return
        config_file, study_file = path / "fsdp.yaml", path / "study.json"
        config_file.write_text(yaml.safe_dump(fsdp_config(resources(job, cfg).gpus)))
        study_file.write_text(cfg.model_dump_json())
        cmd = accelerate_command(cfg, job, config_file, study_file)
        log.info("%s", shlex.join(cmd))
        launched = subprocess.Popen(cmd)
        while launched.poll() is None:
            if claim.lost.wait(1.0):
                launched.terminate()
                launched.wait()
                raise ClaimLost(f"{path.name}: another process took over this run; the launch was stopped")
        if launched.returncode:
            raise subprocess.CalledProcessError(launched.returncode, cmd)
