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
_ENV_WORD = re.compile(r"[A-Za-z]{1,20}[0-9]{0,2}|[0-9]{1,2}")  # OPENAI, KEY, S3, GPT4, 2
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
    """Why `name` cannot be the environment variable that holds the key, without repeating more of it than its
    first 3 characters and its length. A set variable is accepted whatever its name; an unset one only when it is
    shaped like a conventional variable's name (OPENAI_API_KEY, hf_token, S3_KEY: one case, words of letters
    with at most 2 trailing digits), since its name is then shown ("$NAME is not set"). Anything else (a hex or
    base64 token, a word run into digits like mysecretkey2024, a known key prefix) may be the key itself."""
    if name in os.environ:
        return None
    if _conventional_name(name) and not name.startswith(_KEY_PREFIXES):
        return None
    return (f"--api-key-env takes the name of an environment variable holding the key (e.g. OPENAI_API_KEY), not "
            f"the key: got a value starting {name[:3]!r} ({len(name)} characters), which is not shown (an unset "
            f"variable whose name is not shaped like OPENAI_API_KEY is taken for a key)")


def _conventional_name(name: str) -> bool:
    words = [word for word in name.split("_") if word]
    return (bool(_ENV_NAME.fullmatch(name)) and name in (name.upper(), name.lower()) and bool(words)
            and all(_ENV_WORD.fullmatch(word) for word in words))


def weights_identity(path: str, model=None) -> str:
    """What a local translator's cache entries are keyed by: for a local directory or file, its name and the digest
    of its content (retrained weights at the same path are another translator); for a hub id, the commit that was
    loaded where transformers records it."""
    local = Path(path)
    if local.exists():
        return f"{local.name}@{tree_digest(local)}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"{path}@{commit}" if commit else str(path)
