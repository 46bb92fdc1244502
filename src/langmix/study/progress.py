"""Progress of a study's runs: the callbacks the CLI fills in (`Hooks`), and their relay from `--workers`
processes to the driver (`Relay` in a worker, `WorkerProgress` in the driver)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


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


class Relay:
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


class WorkerProgress:
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

    def __enter__(self) -> WorkerProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.events.put(None)
        self._thread.join(timeout=30)
        self.events.close()
