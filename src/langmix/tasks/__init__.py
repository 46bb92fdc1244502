"""Tasks as plugins: one module per task holds what langmix needs to know about it.

A task declares how long its answers may be, how one output is scored against one item's reference, which
per-language metrics it reports and which of them is the headline. Adding a task is one new module here that calls
`register(...)` plus its data; nothing else names tasks. (Which file formats a task's data may come in needs no
declaration: every loaded example names its task, and examples of another task are refused.) A task may name the
modules its scorer depends on (`Task.scorer_modules`); their source makes its `scorer_digest`, which a study records
with each evaluation so verdicts of an older scorer are found and re-scored.
"""

from __future__ import annotations

import importlib
import pkgutil

from langmix.tasks.base import (SCORER_MODULES, ScorerDigest, Task, TaskContext, UnscorableReferenceError,
                                check_references, get, names, register, scorer_digest)

# every module of this package is a task (math, api, and whatever a user adds): importing it registers it
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["SCORER_MODULES", "ScorerDigest", "Task", "TaskContext", "UnscorableReferenceError", "check_references",
           "get", "names", "register", "scorer_digest"]
