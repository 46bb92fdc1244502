"""Tasks as plugins: one module per task holds what langmix needs to know about it.

A task declares the file formats its data comes in, how long its answers may be, how one output is scored
against one item's reference, which per-language metrics it reports and which of them is the headline. Adding a
task is one new module here that calls `register(...)` plus its data; nothing else names tasks.
"""

from __future__ import annotations

import importlib
import pkgutil

from langmix.tasks.base import Task, TaskContext, UnscorableReferenceError, check_references, get, names, register

# every module of this package is a task (math, api, and whatever a user adds): importing it registers it
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Task", "TaskContext", "UnscorableReferenceError", "check_references", "get", "names", "register"]
