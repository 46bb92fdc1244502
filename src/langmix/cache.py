"""langmix's cache directory, and publishing a built entry into it atomically."""

from __future__ import annotations

import os
import random
import shutil
import socket
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("LANGMIX_CACHE", Path.home() / ".cache" / "langmix"))


def temp_dir(out: Path) -> Path:
    """A temp directory beside `out`, unique to this process (several jobs may build the same cache entry)."""
    return out.with_name(f"{out.name}.tmp-{socket.gethostname()}-{os.getpid()}-{random.getrandbits(32):08x}")


def publish(tmp: Path, out: Path) -> Path:
    """Rename `tmp` to `out` atomically; if another process published `out` first, keep theirs."""
    try:
        tmp.rename(out)
    except OSError:
        if not out.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out
