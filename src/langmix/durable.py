"""Writes that survive a crash of the machine, not only of the process: a file is flushed to disk before it is
renamed over its target, and the directory after, so a power loss leaves the old file or the new one, never an
empty or partial file under the target's name (a rename alone is atomic for processes, but the kernel may write
the rename to disk before the data)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush `path`'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush `path`'s entries (renames, new files) to disk; a filesystem that cannot sync a directory is let be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace(tmp: Path, target: Path) -> None:
    """Rename the written file `tmp` over `target`, with its data and the rename on disk."""
    fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def temp_beside(target: Path, suffix: str = ".tmp") -> Path:
    """A temp file name beside `target`, unique to this process and call (several writers may race)."""
    return target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def write_text(target: Path, text: str, flush: bool = True) -> None:
    """Write `text` (UTF-8) to `target` through a temp file renamed over it: a reader, and a crashed process, see
    the old content or the new; with `flush` (~10 ms), a crashed machine too."""
    tmp = temp_beside(target)
    try:
        tmp.write_text(text, encoding="utf-8")
        if flush:
            replace(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_json_object(path: Path) -> dict | None:
    """A JSON record written here, read back: the object in `path`, or None where it is missing, unreadable,
    damaged or not an object (a reader decides what a lost record means; none crashes on one)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
