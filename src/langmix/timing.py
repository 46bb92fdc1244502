"""Wall-clock accounting of model compute (forward/backward/optimizer steps and generate) versus everything else.

Stages wrap their model calls in `compute()`; `benchmarks/study_overhead.py` reads `COMPUTE_SECONDS`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

COMPUTE_SECONDS = {"train": 0.0, "generate": 0.0, "pretrain": 0.0}


_OPEN = [0]  # compute regions open now (in this thread or another)


@contextmanager
def compute(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    _OPEN[0] += 1
    try:
        yield
    finally:
        _OPEN[0] -= 1
        COMPUTE_SECONDS[kind] += time.perf_counter() - start


def in_compute() -> bool:
    """Whether a `compute()` region is open (a callback made from inside one would be counted as compute)."""
    return _OPEN[0] > 0


def reset() -> None:
    for key in COMPUTE_SECONDS:
        COMPUTE_SECONDS[key] = 0.0
