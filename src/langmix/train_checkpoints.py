"""Which checkpoint a training run resumes from: the newest complete `checkpoint-N`, where complete means every
file a killed save could leave short is whole (safetensors as long as their header says, torch's zip archives with a
readable central directory, `trainer_state.json` valid JSON); a damaged one is skipped with a warning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("langmix.train")


def _checkpoint_problem(ckpt: Path) -> str | None:
    """Why a checkpoint directory cannot be resumed from (None when it is complete).

    A process killed while saving can leave a truncated file: safetensors files must be as long as their header
    says, and torch's zip-format files (optimizer, scheduler, RNG state) must have a readable central directory.
    """
    import struct
    import zipfile

    if not (ckpt / "trainer_state.json").exists():
        return "trainer_state.json is missing"
    try:
        json.loads((ckpt / "trainer_state.json").read_text())
    except ValueError:
        return "trainer_state.json is not valid JSON"
    for f in sorted(ckpt.iterdir()):
        if f.suffix == ".safetensors":
            size = f.stat().st_size
            with open(f, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    return f"{f.name} is truncated"
                (n,) = struct.unpack("<Q", head)
                if n > size - 8:  # a garbled length: reading it would ask for up to 2**64 bytes
                    return f"{f.name} is truncated or has a broken header"
                try:
                    end = _safetensors_end(json.loads(fh.read(n)))
                except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                    return f"{f.name} has a broken header"
            if size != 8 + n + end:
                return f"{f.name} is truncated ({size} of {8 + n + end} bytes)"
        elif f.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(f) as z:
                    z.namelist()
            except (zipfile.BadZipFile, OSError):
                return f"{f.name} is truncated or not a torch archive"
    return None


def _safetensors_end(header) -> int:
    """Where a safetensors file's tensor data ends, from its parsed header (raises on a header of another shape)."""
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if not all(type(e) is int for e in ends):
        raise TypeError("data offsets must be integers")
    return max(ends, default=0)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` directory; an incomplete newer one is skipped with a warning."""
    candidates = sorted((p for p in ckpt_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                        key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in candidates:
        problem = _checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        log.warning("%s is incomplete (%s); falling back to an earlier checkpoint", ckpt, problem)
    return None
