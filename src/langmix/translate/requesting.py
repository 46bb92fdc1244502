"""How an HTTP translation backend runs its requests: a pool of worker threads that a stop event ends promptly
(Ctrl-C, or a failure that ends the run: no new request or retry after it), the wait a `Retry-After` header asks
for, and which failures say that the server cannot be reached at all."""

from __future__ import annotations

import datetime
import email.utils
import errno
import math
import queue
import socket
import threading
import urllib.error
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_NO_ROUTE = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN,
             errno.EADDRNOTAVAIL}


def could_not_connect(exc: BaseException) -> bool:
    """Whether the failure behind `exc` (its cause or context: the error a request raised) is a connection that was
    never made: refused, no such host, no route. Not a timeout (a busy server, or a dropped packet), a reset or
    cut-off response, or an HTTP status, which a server that is there gives."""
    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(cause, urllib.error.URLError) and not isinstance(cause, urllib.error.HTTPError):
        cause = cause.reason
    if isinstance(cause, socket.gaierror):
        return True
    return isinstance(cause, OSError) and not isinstance(cause, TimeoutError) and cause.errno in _NO_ROUTE


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a `Retry-After` header asks for (RFC 9110: seconds, or an HTTP date), or None when it is missing
    or malformed ("1.2.3", "²", "-1", "nan"), which a server's bug should not turn into a crash."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def run_each(items: list[T], work: Callable[[T], R], workers: int, stop: threading.Event,
             done: Callable[[int, R], None]) -> None:
    """`work(item)` for each item on up to `workers` threads; `done(i, result)` is called in this thread as each
    completes. An exception in a worker, or one in this thread (KeyboardInterrupt on Ctrl-C), sets `stop` and is
    raised here at once, after `done` for the results that had arrived: no worker takes another item, and `work`
    is expected to check `stop` before each request or retry. The workers are daemon threads, so a request in
    flight (a hanging server) does not keep the process alive after the interrupt; its answer is lost."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)
    finished: queue.SimpleQueue[tuple[int, object, BaseException | None]] = queue.SimpleQueue()

    def worker() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((i, work(items[i]), None))
            except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread, which raises it)
                finished.put((i, None, exc))
                return

    for k in range(min(workers, len(items))):
        threading.Thread(target=worker, name=f"translate-{k}", daemon=True).start()
    try:
        for _ in range(len(items)):
            i, result, exc = finished.get()
            if exc is not None:
                raise exc
            done(i, result)  # type: ignore[arg-type]
    except BaseException:
        stop.set()
        while True:  # answers that arrived with the interrupt are kept
            try:
                i, result, exc = finished.get_nowait()
            except queue.Empty:
                break
            if exc is None:
                done(i, result)  # type: ignore[arg-type]
        raise
