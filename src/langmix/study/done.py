"""What a finished run records in `DONE`, written last: a check of every output file (its SHA-256, or its size for
files above `_HASH_LIMIT`: model weights); `verify_done` finds a run whose outputs no longer match it (`corrupt`).
Every record here is written whole (tmp + rename), so one that is not what its writer writes was damaged from
outside: such a DONE vouches for nothing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from langmix import durable

DONE = "DONE"
_HASH_LIMIT = 64 << 20  # files above this size are checked by size (model weights), below it by SHA-256


def read_record(path: Path) -> dict | None:
    """The JSON object in `path`, or None where it is missing, unreadable or not an object."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _file_check(path: Path) -> str:
    size = path.stat().st_size
    if size > _HASH_LIMIT:
        return f"size:{size}"
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def done_record(root: Path, outputs: list[str]) -> dict:
    """The DONE record of `outputs` under `root`: a check of each file. A file checked by its size alone (model
    weights, `_HASH_LIMIT`) is flushed to disk first, with its folder: after a machine crash it could hold zeros at
    its full size, which its check would pass, so the DONE that vouches for it is written only once its data is on
    disk. Every other file is checked by its hash, so a crash that loses or garbles it makes the run `corrupt` (and
    redone), never read as done: flushing it would cost ~10 ms a file for nothing."""
    files: dict[str, str] = {}
    folders: set[Path] = set()
    for name in outputs:
        target = root / name
        paths = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        for p in paths:
            files[str(p.relative_to(root))] = check = _file_check(p)
            if check.startswith("size:"):
                durable.fsync_file(p)
                folders.add(p.parent)
    for folder in folders:
        durable.fsync_dir(folder)
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": files}


def done_files(record: dict) -> dict[str, str] | None:
    """The files a DONE record vouches for ({relative path: check}), or None where it is not a DONE record (no
    mapping of paths inside the run to checks, or an empty one: every run has outputs)."""
    files = record.get("files")
    if not isinstance(files, dict) or not files or not all(isinstance(c, str) for c in files.values()):
        return None
    if any(Path(name).is_absolute() or ".." in Path(name).parts for name in files):
        return None  # never a file outside the run
    return files


def verify_done(run: Path) -> str | None:
    """None if the run's DONE record matches its files, else what is wrong."""
    record = read_record(run / DONE)
    files = done_files(record) if record is not None else None
    if files is None:
        return "DONE marker unreadable"
    for name, check in files.items():
        p = run / name
        if not p.is_file():
            return f"{name} is missing"
        if _file_check(p) != check:
            return f"{name} changed or is corrupt"
    return None
