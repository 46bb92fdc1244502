"""File reading shared by the loaders: JSONL rows, and the one error every loader raises for a malformed file
(naming the file, the line and the reason)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


class DataFormatError(ValueError):
    def __init__(self, path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; anything but a JSON object is a DataFormatError."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, lineno, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataFormatError(path, lineno, "expected a JSON object")
            yield lineno, row
