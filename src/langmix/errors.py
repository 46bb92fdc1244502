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


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same path once resolved (symbolic links, `..`), or, both existing, one
    file under two names (a hard link)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_not_input(written: list[Path], option: str, inputs: list[tuple[Path, str]]) -> None:
    """Refuse (a UserInputError) a file this command would write that is one of the files it reads (`inputs`: each
    path with what it is, e.g. "the --from config"): writing it would replace the user's input, whatever `--force`
    says. Compared as files, not as the paths typed (`./a.yaml`, `a.yaml` and a link to it are one file)."""
    for path in written:
        for source, what in inputs:
            if same_file(path, source):
                raise UserInputError(f"cannot write {path} ({option}): it is {what}, which this command reads and "
                                     f"writing would replace; choose another {option}")


def check_new_file(path: Path, option: str, force: bool, inputs: list[tuple[Path, str]] | None = None) -> None:
    """`check_output` for a file a command writes whole at a path the user named, refusing to lose a file: one of
    the command's inputs always (`check_not_input`), any other existing file unless `force` (the command's
    `--force`)."""
    check_output(path, option, directory=False)
    check_not_input([path], option, inputs or [])
    if path.exists() and not force:
        raise UserInputError(f"cannot write {path} ({option}): the file exists; pass --force to replace it, or "
                             f"choose another {option}")
