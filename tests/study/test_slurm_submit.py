"""`slurm.submit` without a cluster: sbatch and squeue are stubbed, so what is tested is the record of job ids
(jobs.json: two submissions at once, ids SLURM cannot see), the executor's parameters, and the message a run gets
when its job ran out of requeues after time-outs. The same on the real cluster: test_slurm_study.py."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import threading

import pytest
from pydantic import ValidationError

from langmix.config import StudyConfig
from langmix.study import slurm, slurm_job
from langmix.study.grid import expand
from tests.conftest import small_study_dict

LAUNCHER = {"kind": "slurm", "partition": "debug", "cpus_per_run": 1, "mem_gb_per_run": 2, "timeout_min": 10,
            "gpus_per_run": 0}


class FakeCluster:
    """sbatch and squeue in memory: submitted jobs stay PENDING until cancelled."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.executors: list[dict] = []
        self._arrays = itertools.count(500)
        self._lock = threading.Lock()
        self.queue_hook = None  # called (with the ids asked about) before squeue answers

    def executor(self, folder, cluster=None, **kwargs):
        cluster_ = self
        record = {"init": kwargs, "params": {}}
        self.executors.append(record)

        class Job:
            def __init__(self, job_id: str) -> None:
                self.job_id = job_id

        class Executor:
            def __init__(self) -> None:
                self._batch: list | None = None

            def update_parameters(self, **params) -> None:
                record["params"].update(params)

            @contextlib.contextmanager
            def batch(self):
                self._batch = []
                yield
                with cluster_._lock:
                    array = next(cluster_._arrays)
                for i, job in enumerate(self._batch):
                    job.job_id = f"{array}_{i}"
                    cluster_.states[job.job_id] = "PENDING"
                self._batch = None

            def submit(self, fn, *args):
                job = Job("")
                self._batch.append(job)
                return job

        return Executor()

    def queue_states(self, job_ids):
        if self.queue_hook is not None:
            self.queue_hook(job_ids)
        return {j: self.states[j] for j in job_ids if j in self.states}

    def scancel(self, cmd, **kwargs):
        assert cmd[0] == "scancel"
        for job_id in cmd[1:]:
            self.states[job_id] = "CANCELLED"


@pytest.fixture
def cluster(monkeypatch):
    import submitit

    fake = FakeCluster()
    monkeypatch.setattr(submitit, "AutoExecutor", fake.executor)
    monkeypatch.setattr(slurm, "queue_states", fake.queue_states)
    monkeypatch.setattr(slurm.subprocess, "run", fake.scancel)
    return fake


def _study(tmp_path, **launcher) -> StudyConfig:
    return StudyConfig.model_validate(small_study_dict(tmp_path / "out", launcher={**LAUNCHER, **launcher}))


def _recorded(cfg: StudyConfig) -> dict:
    return json.loads(slurm._jobs_file(cfg).read_text())


def test_two_submissions_at_once_submit_each_job_once(tmp_path, cluster, caplog):
    """Two `study run --launcher slurm --no-wait` at once each read jobs.json before the other wrote it: 6 jobs for
    a study of 3, jobs.json named only the second array's, and `study cancel` left the first array's running. Here
    the second submission starts while the first has read jobs.json and not yet submitted."""
    cfg = _study(tmp_path)
    jobs = expand(cfg)
    results: dict[str, list] = {}
    second_started = threading.Event()

    class SecondWaits(logging.Handler):  # the second submission waits for the first one's lock
        def emit(self, record: logging.LogRecord) -> None:
            if "another submission" in record.getMessage():
                second_started.set()

    def first_reads(job_ids) -> None:  # the first submission, between reading jobs.json and submitting
        if threading.current_thread().name == "first":
            cluster.queue_hook = lambda ids: second_started.set()  # ... or the second reads jobs.json too
            second.start()
            assert second_started.wait(60), "the second submission neither waited nor read jobs.json"

    handler = SecondWaits()
    logging.getLogger("langmix").addHandler(handler)
    caplog.set_level(logging.INFO, logger="langmix")
    try:
        cluster.queue_hook = first_reads
        first = threading.Thread(target=lambda: results.update(first=slurm.submit(cfg, jobs)), name="first")
        second = threading.Thread(target=lambda: results.update(second=slurm.submit(cfg, jobs)), name="second")
        first.start()
        first.join()
        second.join()
    finally:
        logging.getLogger("langmix").removeHandler(handler)
    submitted = [str(h.job_id) for h in results["first"] + results["second"]]
    assert len(submitted) == 3 and results["second"] == []
    assert sorted(cluster.states) == sorted(submitted)
    assert _recorded(cfg) == {job.slug: [job_id] for job, job_id in zip(jobs, submitted)}
    assert sorted(slurm.cancel(cfg)) == sorted(submitted)
    assert set(cluster.states.values()) == {"CANCELLED"}


def test_a_recorded_job_slurm_cannot_answer_for_is_kept(tmp_path, cluster):
    """A job whose state squeue and sacct do not give (squeue failed, accounting off) may still run: submitting
    again records the new job beside it, and cancel still asks SLURM for it; one SLURM says ended is dropped."""
    cfg = _study(tmp_path)
    jobs = expand(cfg)
    slurm._jobs_file(cfg).parent.mkdir(parents=True)
    slurm._jobs_file(cfg).write_text(json.dumps({jobs[0].slug: "7_0", jobs[1].slug: "7_1"}))  # the old format
    cluster.states["7_1"] = "COMPLETED"  # its runs are not done (a data file changed the key, say): submitted again
    handles = slurm.submit(cfg, jobs)
    new = [str(h.job_id) for h in handles]
    assert len(new) == 3
    assert _recorded(cfg) == {jobs[0].slug: ["7_0", new[0]], jobs[1].slug: [new[1]], jobs[2].slug: [new[2]]}
    assert slurm.read_job_ids(cfg) == {job.slug: job_id for job, job_id in zip(jobs, new)}  # the newest of each
    asked: list[str] = []
    cluster.queue_hook = asked.extend
    cluster.states["7_0"] = "RUNNING"  # SLURM answers again: it was running all along
    assert sorted(slurm.cancel(cfg)) == sorted(["7_0", *new])
    assert "7_0" in asked and cluster.states["7_0"] == "CANCELLED"


def test_the_executor_requeues_time_outs_launcher_max_requeues_times(tmp_path, cluster):
    """submitit requeues a timed-out job at most `max_num_timeout` times (its default, 3, was implicit): the limit
    is launcher.max_requeues."""
    slurm.submit(_study(tmp_path / "a", max_requeues=7))
    slurm.submit(_study(tmp_path / "b"))
    assert [e["init"]["slurm_max_num_timeout"] for e in cluster.executors] == [7, 3]
    assert "slurm_max_num_timeout" not in cluster.executors[0]["params"]


def test_max_num_timeout_in_launcher_extra_is_refused_naming_max_requeues(tmp_path):
    tree = small_study_dict(tmp_path, launcher={**LAUNCHER, "extra": {"slurm_max_num_timeout": 5}})
    with pytest.raises(ValidationError, match="launcher.max_requeues"):
        StudyConfig.model_validate(tree)


def test_a_job_out_of_requeues_fails_saying_how_often_it_timed_out(tmp_path):
    """submitit's handler of the time-out signal raises 'Job not requeued because: timed-out too many times.'
    wherever the job is (a run then failed with that): the run's error says how often and what to raise."""
    from submitit.core.utils import UncompletedJobError

    cfg = _study(tmp_path, max_requeues=2)

    def submitit_handler(signum, frame):  # what submitit's SignalHandler does once the countdown is spent
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    before = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        said = slurm_job._name_spent_requeues(cfg, timeout_min=10)
        with pytest.raises(slurm_job.TimedOut) as exc:
            os.kill(os.getpid(), signal.SIGUSR2)  # the handler runs before the next line
        assert said == [str(exc.value)]
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert str(exc.value).startswith("timed out 3 times (time limit 10 min; launcher.max_requeues=2)")


def test_the_job_lock_goes_on_unlocked_where_the_filesystem_cannot_lock(tmp_path, monkeypatch, caplog):
    """On a shared filesystem without flock (Lustre without -o flock, NFS without lockd) flock raises ENOLCK:
    `study run --launcher slurm` and `study cancel` crashed there (before the lock, they ran unlocked)."""
    import errno
    import fcntl
    import logging

    from langmix.study import state

    def no_locks(handle, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = []
    with caplog.at_level(logging.WARNING, logger="langmix.study.state"):
        with state.exclusive_lock(tmp_path / "jobs.lock", "waiting"):
            ran.append(1)
    assert ran == [1]
    assert "cannot lock files (No locks available)" in caplog.text and "jobs.lock" in caplog.text


def test_dry_run_leaves_out_jobs_already_queued_as_submit_does(tmp_path, cluster):
    """`--dry-run` listed every unfinished job in its arrays, though `submit` leaves out those whose job is queued
    or running: it said it would submit what it would not."""
    cfg = _study(tmp_path)
    jobs = expand(cfg)
    assert "already queued" not in slurm.dry_run(cfg, jobs)
    first = slurm.submit(cfg, jobs[:2])
    plan = slurm.dry_run(cfg, jobs)
    queued = ", ".join(f"{j.slug} ({h.job_id})" for j, h in zip(jobs[:2], first))
    assert f"2 of 3 jobs are already queued or running and would not be submitted again: {queued}" in plan
    arrays = [line for line in plan.splitlines() if line.startswith("job array of")]
    assert len(arrays) == 1 and arrays[0].startswith("job array of 1:")
    assert f"  {jobs[2].slug}" in plan.splitlines() and f"  {jobs[0].slug}" not in plan.splitlines()
    assert [str(h.job_id) for h in slurm.submit(cfg, jobs)] == ["501_0"]  # what the plan said: the third alone
