"""The study engine on the real single-node SLURM cluster (scripts/slurm-cluster.sh): submit, cancel and
re-submit, kill the driver, two drivers, a failing job. Select with `pytest -k slurm`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from langmix.config import StudyConfig
from langmix.study import slurm
from langmix.study.grid import expand
from langmix.study.runner import eval_dir, study_status, study_tables, train_dir
from langmix.study.state import run_state
from tests.conftest import small_study_dict

pytestmark = pytest.mark.usefixtures("slurm")
# this CPU-only cluster has no GPUs: every run asks for one CPU and no GPU
LAUNCHER = {"kind": "slurm", "partition": "debug", "cpus_per_run": 1, "mem_gb_per_run": 2, "timeout_min": 10,
            "gpus_per_run": 0}


@pytest.fixture(autouse=True)
def _short_claims(monkeypatch):
    """A cancelled job's claim goes stale in seconds, not a minute (the jobs inherit the environment)."""
    monkeypatch.setenv("LANGMIX_HEARTBEAT_S", "1")
    monkeypatch.setenv("LANGMIX_CLAIM_STALE_S", "5")


def _wait(handles, timeout_s: float = 600) -> list[str]:
    deadline = time.time() + timeout_s
    while not all(h.done() for h in handles):
        assert time.time() < deadline, "SLURM jobs did not finish"
        time.sleep(1)
    states = []
    for h in handles:
        state = h.get_info(mode="force").get("State") or h.state
        for _ in range(20):  # sacct lags the result file by a moment
            if state not in ("UNKNOWN", "RUNNING", "COMPLETING", "PENDING"):
                break
            time.sleep(1)
            state = h.get_info(mode="force").get("State") or h.state
        states.append(state)
    return states


def _study(tmp_path, **extra) -> StudyConfig:
    tree = small_study_dict(tmp_path / "out", **{"launcher": LAUNCHER, **extra})
    return StudyConfig.model_validate(tree)


def test_slurm_study_completes_every_run(tmp_path, tiny_model_path):
    cfg = _study(tmp_path)
    handles = slurm.submit(cfg)
    assert len(handles) == 3
    assert _wait(handles) == ["COMPLETED"] * 3
    assert {state for _, _, state, _ in study_status(cfg)} == {"done"}
    assert slurm.read_job_ids(cfg).keys() == {j.slug for j in expand(cfg)}
    rows = study_tables(cfg).execute("SELECT run_hash, task, language, metric, count(*) AS k FROM results "
                                     "GROUP BY ALL").df()
    assert len(rows) > 0 and set(rows["k"]) == {1}
    assert slurm.submit(cfg) == []  # nothing left to do


def test_slurm_killed_run_then_resubmit_resumes_to_the_same_result(tmp_path, tiny_model_path):
    training = {"max_steps": 60, "save_steps": 3, "logging_steps": 1}
    cfg = _study(tmp_path, include_base=False, mixtures=[{"design": "english_only"}], training=training)
    (job,) = expand(cfg)
    run = train_dir(cfg, job.train)
    handles = slurm.submit(cfg)
    deadline = time.time() + 300
    while not list((run / "checkpoints").glob("checkpoint-*/trainer_state.json")):
        assert time.time() < deadline and not handles[0].done(), "no checkpoint appeared"
        time.sleep(0.05)
    # The worker dies hard (OOM killer, lost node), then the user cancels the job. A plain scancel alone would not
    # do: submitit lets the SIGTERM pass and the run goes on for KillWait seconds, enough on a fast machine to
    # finish all 60 steps, so the interruption is made deterministic with SIGKILL to the claim's owner.
    owner = json.loads((run / "claim.json").read_text())
    os.kill(owner["owner"]["pid"], signal.SIGKILL)
    subprocess.run(["scancel", str(handles[0].job_id)], check=False)
    assert _wait(handles)[0] != "COMPLETED"
    assert run_state(run) != "done"
    resumed = slurm.submit(cfg)
    assert _wait(resumed) == ["COMPLETED"]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == 60
    # the same study, uninterrupted, elsewhere: same loss and same metrics
    ref = _study(tmp_path / "ref", include_base=False, mixtures=[{"design": "english_only"}], training=training)
    assert _wait(slurm.submit(ref)) == ["COMPLETED"]
    ref_summary = json.loads((train_dir(ref, job.train) / "train_summary.json").read_text())
    assert summary["last_loss"] == pytest.approx(ref_summary["last_loss"], rel=1e-4)  # the loss at step 60
    from safetensors.torch import load_file
    import torch

    got_w = load_file(str(run / "final" / "model.safetensors"))
    want_w = load_file(str(train_dir(ref, job.train) / "final" / "model.safetensors"))
    for name in want_w:
        torch.testing.assert_close(got_w[name], want_w[name])
    got = pq.read_table(eval_dir(cfg, job.evals[0]) / "results.parquet").to_pandas()
    want = pq.read_table(eval_dir(ref, job.evals[0]) / "results.parquet").to_pandas()
    assert got["value"].tolist() == want["value"].tolist()


def test_slurm_driver_killed_then_rerun_repeats_nothing(tmp_path, tiny_model_path):
    cfg = _study(tmp_path)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    proc = subprocess.Popen([sys.executable, "-m", "langmix.cli", "study", "run", str(config), "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 300
    while not any(state == "done" for _, _, state, _ in study_status(cfg)):
        assert time.time() < deadline and proc.poll() is None, "no run finished"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the jobs live on in SLURM; wait for them, then drive the study again
    ids = sorted(set(slurm.read_job_ids(cfg).values()))
    while any(s in ("PENDING", "RUNNING", "COMPLETING") for s in slurm.queue_states(ids).values()):
        assert time.time() < deadline + 300
        time.sleep(1)
    stamps = {p: (p / "DONE").stat().st_mtime_ns for _, _, s, p in study_status(cfg) if s == "done"}
    assert stamps
    rerun = subprocess.run([sys.executable, "-m", "langmix.cli", "study", "run", str(config), "--no-report"],
                           capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert all((p / "DONE").stat().st_mtime_ns == t for p, t in stamps.items())
    rows = study_tables(cfg).execute("SELECT run_hash, task, language, metric, count(*) AS k FROM results "
                                     "GROUP BY ALL").df()
    assert len(rows) == 3 * 3 * len(set(rows["metric"])) and set(rows["k"]) == {1}


def test_slurm_two_drivers_train_each_run_once(tmp_path, tiny_model_path):
    cfg = _study(tmp_path, include_base=False)
    first, second = slurm.submit(cfg), slurm.submit(cfg)
    _wait(first + second)
    for job in expand(cfg):
        summary = json.loads((train_dir(cfg, job.train) / "train_summary.json").read_text())
        assert summary["resumed_from"] is None
        assert run_state(eval_dir(cfg, job.evals[0])) == "done"
    trained = sum(1 for p in (tmp_path / "out").rglob("identity.json"))
    assert trained == 2


def test_slurm_failing_job_is_reported_with_its_log(tmp_path, tiny_model_path):
    """Through the CLI: a job that fails makes `study run --launcher slurm` exit 1 (it exited 0), naming the job."""
    from typer.testing import CliRunner

    from langmix.cli import app

    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            launcher=LAUNCHER)
    broken = tmp_path / "broken-model"  # a missing directory would be refused before anything is submitted
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    tree["models"].append({"name": "missing", "source": "hf", "path": str(broken), "params": 1.0e6})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    result = CliRunner().invoke(app, ["study", "run", str(config), "--launcher", "slurm", "--no-report"])
    assert result.exit_code == 1, result.output
    ids = slurm.read_job_ids(cfg)
    failed = next(slug for slug in ids if "missing" in slug)
    assert f"job {ids[failed]}: FAILED" in " ".join(result.output.split())
    assert "broken-model" in slurm.log_tail(cfg, failed, lines=60)
    (job,) = [j for j in expand(cfg) if j.slug == failed]  # the run's error under the job's line
    error = json.loads((train_dir(cfg, job.train) / "status.json").read_text())["error"].splitlines()[0]
    assert f"train/{job.train.slug}: {error}" in result.output
    status = {spec.model.name: state for kind, spec, state, _ in study_status(cfg) if kind == "train"}
    assert status == {"tiny": "done", "missing": "failed"}


def test_slurm_resubmitting_live_jobs_submits_nothing_twice(tmp_path, tiny_model_path):
    """A second `study run --launcher slurm` while the first one's jobs are queued or running submitted them all
    again (jobs.json then named only the duplicates, and `study cancel` missed the real ones)."""
    cfg = _study(tmp_path)  # an array of 3: squeue merges its pending tasks into one line unless asked not to
    first = slurm.submit(cfg)
    again = slurm.submit(cfg)
    assert len(first) == 3 and again == []
    assert _wait(first) == ["COMPLETED"] * 3
    assert slurm.read_job_ids(cfg) == {j.slug: str(h.job_id) for j, h in zip(expand(cfg), first)}


def test_slurm_refused_submission_is_one_line_naming_the_reason(tmp_path):
    cfg = _study(tmp_path, include_base=False, mixtures=[{"design": "english_only"}])
    cfg = cfg.model_copy(update={"launcher": cfg.launcher.model_copy(update={"partition": "nosuch"})})
    with pytest.raises(slurm.SubmissionError, match=r"sbatch refused a job array of 1: .*[Ii]nvalid partition"):
        slurm.submit(cfg)


def test_slurm_jobs_that_completed_are_not_reported_running_from_a_stale_snapshot(tmp_path, tiny_model_path,
                                                                                   monkeypatch):
    """A long study whose jobs all completed exited 1 naming a job RUNNING: submitit's `state` answers from a sacct
    snapshot refreshed at most every 10 minutes (half the time since submission), and a job is done once its result
    file exists, so the driver read the snapshot taken while the job ran. Here submitit's plain reads always answer
    from such a snapshot (as in a study of an hour); only forced reads call sacct."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob
    from typer.testing import CliRunner

    from langmix.cli import app

    class StaleWatcher(SlurmInfoWatcher):
        def update_if_long_enough(self, mode: str) -> None:
            if mode == "force":
                super().update_if_long_enough(mode)
            elif mode == "standard":  # the snapshot taken while the jobs ran; the next refresh is minutes away
                for job_id in self._registered:
                    self._info_dict.setdefault(job_id, {"State": "RUNNING"})

    monkeypatch.setattr(SlurmJob, "watcher", StaleWatcher(delay_s=600))
    tree = small_study_dict(tmp_path / "out", launcher=LAUNCHER, mixtures=[{"design": "english_only"}])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = CliRunner().invoke(app, ["study", "run", str(config), "--no-report"])
    assert result.exit_code == 0, result.output
    assert "RUNNING" not in result.output
    cfg = StudyConfig.model_validate(tree)
    assert {state for _, _, state, _ in study_status(cfg)} == {"done"}


def test_slurm_a_job_killed_without_its_result_is_seen_ended_while_waiting(tmp_path, tiny_model_path, monkeypatch):
    """A job killed before writing its result file (scancel, out of memory, a lost node) was seen ended only when
    submitit next called sacct on its own, at most every 10 minutes: `study run` waited that long. Here submitit's
    plain reads never refresh (as late in a long study); the waiting loop's own periodic sacct call must see it."""
    import threading

    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob
    from typer.testing import CliRunner

    from langmix import cli_study
    from langmix.cli import app

    class StaleWatcher(SlurmInfoWatcher):
        def update_if_long_enough(self, mode: str) -> None:
            if mode == "force":
                super().update_if_long_enough(mode)

    monkeypatch.setattr(SlurmJob, "watcher", StaleWatcher(delay_s=600))
    monkeypatch.setattr(cli_study, "FORCED_REFRESH_S", 1.0, raising=False)  # (raising=False: also before it existed)
    tree = small_study_dict(tmp_path / "out", launcher=LAUNCHER, mixtures=[{"design": "english_only"}],
                            include_base=False, training={"max_steps": 200, "save_steps": 100})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    result: dict = {}
    study = threading.Thread(target=lambda: result.update(out=CliRunner().invoke(
        app, ["study", "run", str(config), "--no-report"])), daemon=True)
    study.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (slurm.read_job_ids(cfg) and any(
            s == "RUNNING" for s in slurm.queue_states(sorted(set(slurm.read_job_ids(cfg).values()))).values())):
        time.sleep(1)
    ids = sorted(set(slurm.read_job_ids(cfg).values()))
    assert ids, "the job was never submitted"
    subprocess.run(["scancel", *ids], check=True)
    study.join(timeout=120)
    assert not study.is_alive(), "study run still waits for a job that was cancelled"
    out = result["out"]
    assert out.exit_code == 1 and "CANCELLED" in out.output, out.output


def test_slurm_a_job_whose_state_sacct_has_not_settled_is_judged_by_its_runs(tmp_path, tiny_model_path,
                                                                            monkeypatch):
    """Where sacct has no final state for an ended job (accounting lags or is off), its runs decide: a job whose
    runs are all done completed; one whose runs are not is reported with SLURM's state."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    cfg = _study(tmp_path, mixtures=[{"design": "english_only"}])
    handles = slurm.submit(cfg)
    assert _wait(handles) == ["COMPLETED"] * 2

    class LaggingWatcher(SlurmInfoWatcher):
        def update_if_long_enough(self, mode: str) -> None:
            for job_id in self._registered:
                self._info_dict[job_id] = {"State": "RUNNING"}

    monkeypatch.setattr(SlurmJob, "watcher", LaggingWatcher(delay_s=600))
    assert slurm.final_states(cfg, handles, settle_s=0) == {str(h.job_id): "COMPLETED" for h in handles}
    ids = slurm.read_job_ids(cfg)
    trained = next(j for j in expand(cfg) if j.train is not None)
    (eval_dir(cfg, trained.evals[0]) / "DONE").unlink()  # its evaluation is not done now
    states = slurm.final_states(cfg, handles, settle_s=0)
    assert states[ids[trained.slug]] == "RUNNING"
    assert {s for j, s in states.items() if j != ids[trained.slug]} == {"COMPLETED"}


def test_slurm_two_submissions_at_once_submit_each_job_once_and_cancel_cancels_all(tmp_path):
    """Two `study run --launcher slurm --no-wait` at once submitted 6 jobs for a study of 3; jobs.json named only
    the second array's, so `study cancel` left the first array's running. The jobs here wait in the queue (begin in
    an hour): the second submission starts once the first has read jobs.json, before it submits."""
    import logging
    import threading

    cfg = _study(tmp_path, launcher={**LAUNCHER, "extra": {"slurm_additional_parameters": {"begin": "now+1hour"}}})
    jobs = expand(cfg)
    real_queue_states = slurm.queue_states
    results: dict[str, list] = {}
    second_started = threading.Event()

    class SecondWaits(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "another submission" in record.getMessage():
                second_started.set()

    def queue_states(job_ids):
        if threading.current_thread().name == "first" and second.ident is None:
            second.start()
            assert second_started.wait(120), "the second submission neither waited nor read jobs.json"
        elif threading.current_thread().name == "second":
            second_started.set()
        return real_queue_states(job_ids)

    handler = SecondWaits()
    logger = logging.getLogger("langmix")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    first = threading.Thread(target=lambda: results.update(first=slurm.submit(cfg, jobs)), name="first")
    second = threading.Thread(target=lambda: results.update(second=slurm.submit(cfg, jobs)), name="second")
    try:
        slurm.queue_states = queue_states
        first.start()
        first.join()
        second.join()
    finally:
        slurm.queue_states = real_queue_states
        logger.removeHandler(handler)
        logger.setLevel(level)
        ours = [str(h.job_id) for h in results.get("first", []) + results.get("second", [])]
        cancelled = slurm.cancel(cfg)
        subprocess.run(["scancel", *ours], check=False, capture_output=True)  # any the record missed: ours too
    assert len(ours) == 3 and results["second"] == []
    assert slurm.read_job_ids(cfg) == {job.slug: job_id for job, job_id in zip(jobs, ours)}
    assert sorted(cancelled) == sorted(ours)


def test_slurm_a_job_out_of_requeues_fails_saying_how_often_it_timed_out(tmp_path, tiny_model_path):
    """submitit requeues a timed-out job `max_num_timeout` times (3 unless set, and the README said time-outs are
    simply requeued), then fails it with 'timed-out too many times'. launcher.max_requeues sets the limit; a run
    that exhausts it fails naming the count. SLURM's time-limit warning is sent by hand (scancel --signal): with a
    limit of 10 minutes submitit counts any warning as a time-out."""
    cfg = _study(tmp_path, include_base=False, mixtures=[{"design": "english_only"}],
                 training={"max_steps": 100000, "save_steps": 2}, launcher={**LAUNCHER, "max_requeues": 0})
    (job,) = expand(cfg)
    run = train_dir(cfg, job.train)
    (handle,) = slurm.submit(cfg)
    try:
        deadline = time.time() + 300
        # in training (a warning while transformers imports its Trainer comes back as that import's error)
        while not list((run / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            assert time.time() < deadline and not handle.done(), "the run never started training"
            time.sleep(0.2)
        subprocess.run(["scancel", "--signal=USR2", str(handle.job_id)], check=True)
        assert _wait([handle], timeout_s=300) == ["FAILED"]
    finally:
        subprocess.run(["scancel", str(handle.job_id)], check=False, capture_output=True)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"].startswith("TimedOut: timed out 1 time (time limit 10 min; launcher.max_requeues=0)")
    assert run_state(run) != "done"
    assert slurm.job_errors(cfg, str(handle.job_id)) == [f"train/{job.train.slug}: {status['error']}"]
