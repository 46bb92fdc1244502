"""The one error every loader raises for a malformed file: it names the file, the line and the reason."""

from __future__ import annotations


class DataFormatError(ValueError):
    def __init__(self, path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason
