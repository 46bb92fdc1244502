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

from langmix import durable

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
            tmp = durable.temp_beside(target)
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
    return _files_under(root, root.rglob("*"))


def _files_under(root: Path, files: Iterable[Path]) -> str:
    """One digest over the names relative to `root` and the contents of `files` (hidden files and folders left
    out: a git checkout's `.git`, an editor's swap file, a hub download's `.cache`)."""
    h = hashlib.sha256()
    for f in sorted(files):
        rel = f.relative_to(root)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(rel.as_posix().encode() + b"\0" + file_digest(f).encode() + b"\0")
    return h.hexdigest()[:16]


def source_identity(raw: str | None) -> str | None:
    """What a data path reads, wherever it lies: `<name>@<digest>`, the file's own name (its suffix picks the
    parser, its stem may name the items: gsm8k's split, a parallel set's id prefix) and content digest; for a
    `{lang}`/`{language}` pattern (in the file name or a folder's), the pattern from its first such part and the
    relative names and contents of the files it may match there; for a directory, the relative names and contents
    of every file under it (`tree_digest`). Hidden files and the folders above are left out, so a project copied
    elsewhere keeps its run keys. A path with no local file (a hub dataset id) is its text."""
    if not raw:
        return raw
    path = Path(raw)
    first = next((k for k, part in enumerate(path.parts) if "{" in part), None)
    if first is not None:  # `data/{lang}.jsonl`, `data/{lang}/test.tsv`: from the folder above the first pattern
        root, rel = Path(*path.parts[:first]) if first else Path("."), Path(*path.parts[first:]).as_posix()
        files = list(root.glob(re.sub(r"\{(lang|language)\}", "*", rel))) if root.is_dir() else []
        return f"{rel}@{_files_under(root, files)}" if any(f.is_file() for f in files) else raw
    if path.is_dir():
        return tree_digest(path)
    if path.is_file():
        return f"{path.name}@{file_digest(path)[:16]}"
    return raw
