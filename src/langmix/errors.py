"""The error every bad input a user can fix derives from (a malformed file, an unknown language, a bad config value,
a contaminated mixture): the CLI prints its message and exits 2, without a traceback."""

from __future__ import annotations


class UserInputError(ValueError):
    """A bad input, named with what to fix; a `ValueError` so callers that catch those keep working."""
