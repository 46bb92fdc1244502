"""Where the public datasets live (`../shared/data`, beside the repository, also in CI)."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public data not present at {path} (it sits beside the repository in CI)")
    return path
