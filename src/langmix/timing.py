"""Wall-clock accounting of model compute (forward/backward/optimizer steps and generate) versus everything else.

Stages wrap their model calls in `compute()`; `benchmarks/study_overhead.py` reads `COMPUTE_SECONDS`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

COMPUTE_SECONDS = {"train": 0.0, "generate": 0.0, "pretrain": 0.0}


@contextmanager
def compute(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        COMPUTE_SECONDS[kind] += time.perf_counter() - start


def reset() -> None:
    for key in COMPUTE_SECONDS:
        COMPUTE_SECONDS[key] = 0.0
