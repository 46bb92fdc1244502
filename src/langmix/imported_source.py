"""The source of langmix's modules as they were imported, so a record of the code that ran describes that code.

A file read later (hours later, in a process that trained first) may hold an edit the process never ran: the
scorer digest (`langmix.tasks.scorer_digest`) would then label verdicts of the imported scorer with the edited
one's hash, and the verdicts would never be re-scored. `install` (run when `langmix` is imported, before any other
langmix module) puts a finder first on `sys.meta_path` that, as each `langmix.*` module (or one named to `watch`)
is imported, reads its source file and keeps its hash (`imported_hash`). It finds nothing itself: the import goes
on as before, from the same file.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

_HASHES: dict[str, str] = {}  # module -> "sha256:<16 hex>" of its source when it was (last) imported
_WATCHED: set[str] = set()  # modules outside langmix whose source is kept too


def source_hash(source: bytes) -> str:
    return f"sha256:{hashlib.sha256(source).hexdigest()[:16]}"


class _SourceRecorder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if fullname.startswith("langmix.") or fullname in _WATCHED:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.has_location and spec.origin and spec.origin.endswith(".py"):
                with open(spec.origin, "rb") as f:
                    _HASHES[fullname] = source_hash(f.read())
        return None  # the usual finders import it


def install() -> None:
    if not any(isinstance(f, _SourceRecorder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceRecorder())


def watch(module: str) -> None:
    """Keep the source hash of `module` (outside langmix) when it is imported."""
    _WATCHED.add(module)


def imported_hash(module: str) -> str | None:
    """The hash of `module`'s source as it was imported, or None where it was not imported while watched."""
    return _HASHES.get(module)


def record(module: str, digest: str) -> None:
    """Keep `digest` for `module` where none is kept (a module imported before it was watched)."""
    _HASHES.setdefault(module, digest)
