"""Who answers a translation request, for the cache key and for the user: an HTTP server's URL without credentials,
a local model's content digest; and the checks on the environment variable that holds a server's key (its value
is never shown)."""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from langmix.data.digest import tree_digest

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# How common API keys begin (OpenAI, Hugging Face, GitHub, Groq, xAI, Google, Anthropic, ...)
_KEY_PREFIXES = ("sk-", "sk_", "hf_", "ghp_", "gsk_", "xai-", "AIza", "pk-", "pk_", "key-", "Bearer")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def public_url(url: str) -> str:
    """`url` without what may carry a credential (user:password@, the query string, the fragment)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def is_local_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in _LOCAL_HOSTS or host.startswith("127.")


def key_variable_problem(name: str) -> str | None:
    """Why `name` cannot be the environment variable that holds the key (it is not a variable's name, or it looks
    like a key given by mistake), without repeating more of it than its first 3 characters and its length."""
    if name in os.environ:
        return None
    looks_like_key = name.startswith(_KEY_PREFIXES) or (
        len(name) >= 24 and any(c.isdigit() for c in name) and any(c.islower() for c in name))
    if _ENV_NAME.fullmatch(name) and not looks_like_key:
        return None
    return (f"--api-key-env takes the name of an environment variable holding the key (e.g. OPENAI_API_KEY), not "
            f"the key: got a value starting {name[:3]!r} ({len(name)} characters), which is not shown")


def weights_identity(path: str, model=None) -> str:
    """What a local translator's cache entries are keyed by: for a local directory or file, its name and the digest
    of its content (retrained weights at the same path are another translator); for a hub id, the commit that was
    loaded where transformers records it."""
    local = Path(path)
    if local.exists():
        return f"{local.name}@{tree_digest(local)}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"{path}@{commit}" if commit else str(path)
