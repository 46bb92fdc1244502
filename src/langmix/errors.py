"""The error every bad input a user can fix derives from (a malformed file, an unknown language, a bad config value,
a contaminated mixture): the CLI prints its message and exits 2, without a traceback."""

from __future__ import annotations

import os
from pathlib import Path


class UserInputError(ValueError):
    """A bad input, named with what to fix; a `ValueError` so callers that catch those keep working."""


def check_output(path: Path, option: str, directory: bool = True) -> None:
    """Refuse, before any work, an output path this command could not write (a UserInputError: one line, exit 2):
    an existing file where a directory is made (or a directory where a file is written), a file among its parent
    directories, or a directory that is not writable. Otherwise a command could run a whole evaluation or training
    and fail only when saving it."""
    def refuse(why: str) -> None:
        raise UserInputError(f"cannot write {path} ({option}): {why}")

    if path.exists() and path.is_dir() != directory:
        refuse(f"it is a {'file' if directory else 'directory'}, not a {'directory' if directory else 'file'}")
    existing = path if path.exists() else next((p for p in path.absolute().parents if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir() and existing != path:
        refuse(f"{existing} is a file, not a directory")
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        refuse(f"{existing} is not writable")
    if not existing.is_dir() and not os.access(existing, os.W_OK):
        refuse("it is not writable")
