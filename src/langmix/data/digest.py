"""Content digests of the files a run reads, so a run's key changes when its data changes, not when it moves.

A file's digest is cached by (path, size, mtime_ns) in memory and in `<cache>/digests.json`, so a study with
many runs hashes each input once. Paths may hold a `{lang}`/`{language}` pattern, name a directory (every file
under it counts) or be a hub dataset id (not local: the id and revision are the identity).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable

_MEMO: dict[tuple[str, int, int], str] = {}


def _cache_file() -> Path:
    return Path(os.environ.get("LANGMIX_CACHE", Path.home() / ".cache" / "langmix")) / "digests.json"


def _load_disk() -> dict[str, str]:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _MEMO:
        return _MEMO[key]
    disk = _load_disk()
    disk_key = "|".join(map(str, key))
    if disk_key not in disk:
        disk[disk_key] = _sha256(path)
        try:  # a shared cache: write a unique temp file, then rename atomically
            target = _cache_file()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(disk))
            tmp.replace(target)
        except OSError:
            pass
    _MEMO[key] = disk[disk_key]
    return _MEMO[key]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(path: str | Path) -> str:
    """One digest over the names and contents of every file under a directory (or of one file), hidden files and
    folders (`.git`, `.cache`) left out: a local model's weights, config and tokenizer files. Each file's digest is
    cached by (path, size, mtime_ns), so only a new or changed file is read again."""
    root = Path(path)
    if root.is_file():
        return file_digest(root)[:16]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(rel.as_posix().encode() + b"\0" + file_digest(f).encode() + b"\0")
    return h.hexdigest()[:16]


def _files_under(root: Path, files: Iterable[Path]) -> str:
    """One digest over the names relative to `root` and the contents of `files`."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + file_digest(f).encode() + b"\0")
    return h.hexdigest()[:16]


def source_identity(raw: str | None) -> str | None:
    """What a data path reads, wherever it lies: `<name>@<digest>`, the file's own name (its suffix picks the
    parser, its stem may name the items: gsm8k's split, a parallel set's id prefix) and content digest; for a
    `{lang}`/`{language}` pattern, the pattern's name and the relative names and contents of the files it may
    match in its folder; for a directory, the relative names and contents of every file under it. The folders
    above are left out, so a project copied elsewhere keeps its run keys. A path with no local file (a hub dataset
    id) is its text."""
    if not raw:
        return raw
    path = Path(raw)
    if "{" in path.name:
        folder = path.parent
        pattern = re.sub(r"\{(lang|language)\}", "*", path.name)
        files = [f for f in folder.glob(pattern) if f.is_file()] if folder.is_dir() else []
        return f"{path.name}@{_files_under(folder, files)}" if files else raw
    if path.is_dir():
        return _files_under(path, (f for f in path.rglob("*") if f.is_file()))
    if path.is_file():
        return f"{path.name}@{file_digest(path)[:16]}"
    return raw
