"""submitit against the real SLURM cluster of scripts/slurm-cluster.sh (skips without one)."""

from __future__ import annotations

import os
import sys
import time

import pytest

submitit = pytest.importorskip("submitit")
cloudpickle = pytest.importorskip("cloudpickle")

# The job unpickles square_on_node in a fresh python whose sys.path lacks the repo root unless pytest
# ran from it: ship this module's functions by value so that `import tests...` is never needed there.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def square_on_node(x: int) -> dict:
    """Runs inside the SLURM job: top-level so submitit can pickle it."""
    return {"value": x * x, "job_id": os.environ.get("SLURM_JOB_ID"),
            "array_task": os.environ.get("SLURM_ARRAY_TASK_ID")}


def _executor(folder, **extra):
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition="debug", timeout_min=5, cpus_per_task=1, mem_gb=1, **extra)
    return executor


def _final_state(job, timeout_s: float = 60) -> str:
    """sacct catches up a moment after the result file appears: poll until a final state."""
    deadline = time.monotonic() + timeout_s
    state = job.state
    while state not in FINAL_STATES and time.monotonic() < deadline:
        time.sleep(1)
        state = job.get_info(mode="force").get("State") or "UNKNOWN"
    return job.state


def test_slurm_submitit_job_round_trip(slurm, tmp_path):
    executor = _executor(tmp_path)
    assert executor.cluster == "slurm"
    start = time.monotonic()
    job = executor.submit(square_on_node, 7)
    result = job.result()
    elapsed = time.monotonic() - start
    print(f"slurm round-trip of a trivial job: {elapsed:.1f}s")
    assert result["value"] == 49
    assert result["job_id"] == str(job.job_id)
    assert _final_state(job) == "COMPLETED"


def test_slurm_submitit_job_array(slurm, tmp_path):
    executor = _executor(tmp_path, slurm_array_parallelism=2)
    jobs = executor.map_array(square_on_node, [1, 2, 3])
    assert len(jobs) == 3
    results = [job.result() for job in jobs]
    assert [r["value"] for r in results] == [1, 4, 9]
    assert sorted(r["array_task"] for r in results) == ["0", "1", "2"]
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1  # one array: <array id>_<task>
    assert [_final_state(job) for job in jobs] == ["COMPLETED"] * 3
