"""The lifecycle of a study's `--workers` processes: each ends with its driver, relays its progress, and stops its
job on the driver's SIGINT; the driver stops them when it is interrupted."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)


def exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """A local worker ends when its study driver does: a driver killed with SIGKILL cannot stop its pool, whose
    workers would otherwise go on with the study, then wait forever for work. The run a worker held is left
    interrupted, and resumes like any other."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, name="langmix-parent-watch", daemon=True).start()


# A `--workers` process's state: the queue its progress goes to the driver by (None: not relayed), whether a job
# runs, whether the study is being stopped (`worker_sigint`)
WORKER = {"events": None, "in_job": False, "stopping": False}


def start_worker(parent: int, events=None) -> None:
    """What each `--workers` process runs first: it ends with its driver, and relays its progress to `events`."""
    WORKER["events"] = events
    exit_with_parent(parent)
    signal.signal(signal.SIGINT, worker_sigint)


def worker_sigint(signum, frame) -> None:
    """A worker's first SIGINT (Ctrl-C, or the driver stopping the study) stops its job like Ctrl-C stops a run:
    the run is left interrupted and its claim released; later ones are ignored, so they cannot cut that short, and
    the worker takes no further job."""
    if WORKER["stopping"]:
        return
    WORKER["stopping"] = True
    if WORKER["in_job"]:
        raise KeyboardInterrupt


def stop_workers(pool, futures: list, grace_s: float = 30.0) -> None:
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
