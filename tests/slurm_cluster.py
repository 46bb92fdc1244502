"""Is a SLURM cluster usable from here? (started in CI by scripts/slurm-cluster.sh)

Tests that need the cluster call require_slurm() (or use the `slurm` fixture of tests/study/conftest.py):
they skip, with the reason, when no cluster answers, and fail instead when LANGMIX_REQUIRE_SLURM=1.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

USABLE_STATES = {"idle", "mixed", "allocated", "completing"}


@functools.lru_cache(maxsize=1)
def slurm_available() -> tuple[bool, str]:
    """(True, description) when `sinfo` answers and some node can run jobs, else (False, reason).

    Probed once per test session: `sinfo` takes ~10 s to give up when no controller answers.
    """
    if shutil.which("sinfo") is None:
        return False, "SLURM not installed (no `sinfo` on PATH); start one with scripts/slurm-cluster.sh"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T %n"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`sinfo` did not answer: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return False, f"`sinfo` failed (rc={proc.returncode}): {detail[-1] if detail else 'no output'}; " \
                      "start a cluster with scripts/slurm-cluster.sh"
    nodes = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    # %T may carry a suffix flag such as "idle*" (not responding) or "idle~" (powered down).
    usable = [n for n in nodes if n and n[0] in USABLE_STATES]
    if not usable:
        states = ", ".join(" ".join(n) for n in nodes) or "no nodes"
        return False, f"no SLURM node is idle/mixed/allocated ({states})"
    return True, "SLURM nodes usable: " + ", ".join(f"{n[1]}={n[0]}" if len(n) > 1 else n[0] for n in usable)


def require_slurm() -> None:
    """Skip the calling test when no cluster is usable; fail instead when LANGMIX_REQUIRE_SLURM=1."""
    ok, reason = slurm_available()
    if ok:
        return
    if os.environ.get("LANGMIX_REQUIRE_SLURM") == "1":
        pytest.fail(f"LANGMIX_REQUIRE_SLURM=1 but {reason}", pytrace=False)
    pytest.skip(reason)
