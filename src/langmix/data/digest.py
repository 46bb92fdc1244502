"""Content digests of the files a run reads, so a run's key changes when its data changes (not only its path).

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


def _expand(path: str) -> list[Path]:
    if "{" in path:
        pattern = re.sub(r"\{(lang|language)\}", "*", path)
        parent = Path(pattern).parent
        return sorted(parent.glob(Path(pattern).name)) if parent.exists() else []
    p = Path(path)
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file())
    return [p] if p.exists() else []


def paths_digest(paths: Iterable[str | None]) -> str:
    """One digest over the content of every local file the paths name; a missing path counts by its name."""
    h = hashlib.sha256()
    for raw in paths:
        if not raw:
            continue
        files = _expand(raw)
        h.update(raw.encode())
        if not files:
            h.update(b"<not local>")
        for f in files:
            h.update(str(f).encode())
            h.update(file_digest(f).encode())
    return h.hexdigest()[:16]
