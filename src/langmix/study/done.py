"""What a finished run records in `DONE`, written last: a check of every output file (its SHA-256, or its size for
files above `_HASH_LIMIT`: model weights) and the key of the run (`key`); `verify_done` finds a run whose outputs no
longer match it (`corrupt`), and a directory holding another run's files (`Foreign`: one copied or moved over it,
whose DONE or files name another key than its name's). Every record here is written whole (tmp + rename), so one
that is not what its writer writes was damaged from outside: such a DONE vouches for nothing.

A run finished before DONE recorded its key is checked from what it holds (`held_key`): a training's identity.json
records its train key, an evaluation's results.parquet its eval key in every row (`run_hash`); where neither says,
it counts as the run its name is for.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from langmix import durable

DONE = "DONE"
_HASH_LIMIT = 64 << 20  # files above this size are checked by size (model weights), below it by SHA-256

log = logging.getLogger(__name__)


class Foreign(str):
    """What `verify_done` says of a run directory that holds another run's files (a directory copied or moved over
    it): a `str`, like its other answers, that `state.run_state` tells apart (`foreign`)."""


def name_key(run: Path) -> str:
    """The key of the run a directory is named for: its name's last part (`<model>-<mixture>-<task>-s<seed>-<key>`,
    `grid._RunSpec.slug`)."""
    return run.name.rsplit("-", 1)[-1]


read_record = durable.read_json_object  # the run's records (DONE, claim, status, journal, identity) read back


def _file_check(path: Path) -> str:
    size = path.stat().st_size
    if size > _HASH_LIMIT:
        return f"size:{size}"
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def done_record(root: Path, outputs: list[str], key: str) -> dict:
    """The DONE record of `outputs` under `root` for the run `key` names: a check of each file. A file checked by
    its size alone (model weights, `_HASH_LIMIT`) is flushed to disk first, with its folder: after a machine crash
    it could hold zeros at its full size, which its check would pass, so the DONE that vouches for it is written
    only once its data is on disk. Every other file is checked by its hash, so a crash that loses or garbles it
    makes the run `corrupt` (and redone), never read as done: flushing it would cost ~10 ms a file for nothing."""
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
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "key": key, "files": files}


def done_files(record: dict) -> dict[str, str] | None:
    """The files a DONE record vouches for ({relative path: check}), or None where it is not a DONE record (no
    mapping of paths inside the run to checks, or an empty one: every run has outputs)."""
    files = record.get("files")
    if not isinstance(files, dict) or not files or not all(isinstance(c, str) for c in files.values()):
        return None
    if not isinstance(record.get("key", ""), str):
        return None
    if any(Path(name).is_absolute() or ".." in Path(name).parts for name in files):
        return None  # never a file outside the run
    return files


def verify_done(run: Path) -> str | None:
    """None if the run's DONE record matches its files and is the run's its name is for, else what is wrong (a
    `Foreign` where the directory holds another run's files: `held_key`, read before any file is hashed)."""
    record = read_record(run / DONE)
    files = done_files(record) if record is not None else None
    if files is None:
        return "DONE marker unreadable"
    if "key" in record and not (isinstance(record["key"], str) and record["key"]):  # type: ignore[operator]
        return "DONE marker unreadable (its key is not a run's key)"
    held = held_key(run, record)  # type: ignore[arg-type]
    if held is not None and held != name_key(run):
        return Foreign(f"it holds the files of run {held}, not of {name_key(run)} (a directory copied or moved "
                       "over it)")
    for name, check in files.items():
        p = run / name
        if not p.is_file():
            return f"{name} is missing"
        if _file_check(p) != check:
            return f"{name} changed or is corrupt"
    return None


def held_key(run: Path, record: dict) -> str | None:
    """The key of the run whose files `run` holds: the one its DONE `record` names; for a run finished before DONE
    named it, the one its files record (a training's identity.json: `train_key`; an evaluation's results.parquet:
    `run_hash`, several joined by commas where its rows disagree); None where unknown. Reads a small record, never
    hashes."""
    if isinstance(record.get("key"), str):
        return record["key"]
    identity = read_record(run / "identity.json")
    if identity is not None:
        key = identity.get("train_key")
        return key if isinstance(key, str) else None
    if not (run / "results.parquet").is_file():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        column = pq.read_table(run / "results.parquet", columns=["run_hash"]).column("run_hash").to_pylist()
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        log.debug("%s: results.parquet has no readable run_hash (%s)", run.name, exc)
        return None
    keys = sorted({str(key) for key in column if key is not None})
    return ",".join(keys) or None
