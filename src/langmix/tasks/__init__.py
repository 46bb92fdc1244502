"""Tasks as plugins: one module per task holds what langmix needs to know about it.

A task declares the file formats its data comes in, how long its answers may be, how one output is scored
against one item's reference, which per-language metrics it reports and which of them is the headline. Adding a
task is one new module here that calls `register(...)` plus its data; nothing else names tasks.
"""

from __future__ import annotations

from langmix.tasks.base import Task, TaskContext, UnscorableReferenceError, check_references, get, names, register
from langmix.tasks import api as _api  # noqa: F401  (registers "api")
from langmix.tasks import math as _math  # noqa: F401  (registers "math")

__all__ = ["Task", "TaskContext", "UnscorableReferenceError", "check_references", "get", "names", "register"]
