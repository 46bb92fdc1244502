"""Finished work survives a crash of the machine. A file DONE vouches for by its size alone (model weights) is
flushed to disk before DONE is written (after a crash it could hold zeros at its full size, which its check would
pass); records nothing can rebuild (the SLURM job record, a training's identity) are flushed before they are renamed
over the old ones. Files checked by their hash are not flushed (a crash that garbles them is found: the run is
redone), nor are status and heartbeat files (~10 ms a flush)."""

import os
from pathlib import Path

import pytest

from langmix import durable
from langmix.study import done, state


@pytest.fixture
def disk_events(monkeypatch):
    """The order of fsyncs and renames, by the name of what each touched."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    monkeypatch.setattr(durable.os, "replace", replace)
    monkeypatch.setattr(state.os, "replace", replace)
    monkeypatch.setattr(Path, "replace", lambda self, target: replace(self, target) or Path(target))
    return events


def test_a_flushed_record_is_on_disk_before_it_is_renamed_and_its_folder_after(tmp_path, disk_events):
    state.write_json_atomic(tmp_path / "jobs.json", {"a": ["1"]}, flush=True)
    tmp_name = disk_events[0][1]
    assert tmp_name.startswith("jobs.json.") and tmp_name.endswith(".tmp")
    assert disk_events == [("fsync", tmp_name), ("rename", "jobs.json"), ("fsync", tmp_path.name)]
    disk_events.clear()
    state.write_json_atomic(tmp_path / "status.json", {"state": "running"})  # a status: renamed, not flushed
    assert disk_events == [("rename", "status.json")]
    assert not list(tmp_path.glob("*.tmp"))


def test_done_is_written_only_after_the_files_it_checks_by_size_reach_the_disk(tmp_path, disk_events, monkeypatch):
    monkeypatch.setattr(done, "_HASH_LIMIT", 10)
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "model.safetensors").write_bytes(b"weights above the limit")
    (run / "results.parquet").write_bytes(b"table")
    state.mark_done(run, ["final", "results.parquet"])
    before = disk_events[:disk_events.index(("rename", state.DONE))]
    assert before == [("fsync", "model.safetensors"), ("fsync", "final")]  # the hashed file is not flushed
    assert state.run_state(run) == "done"


def test_a_swap_syncs_the_moved_files_folder_before_its_done(tmp_path, disk_events):
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").write_text("old\n")
    staged = state.staging_dir(run)
    (staged / "predictions.jsonl").write_text("new\n")
    state.swap_in(run, staged, ["predictions.jsonl"], ["predictions.jsonl"])
    journal = disk_events.index(("rename", state.SWAP))
    assert disk_events[journal - 1][0] == "fsync" and disk_events[journal + 1] == ("fsync", "run")  # flushed
    moved = disk_events.index(("rename", "predictions.jsonl"))
    done = disk_events.index(("rename", state.DONE))
    assert ("fsync", "run") in disk_events[moved:done]
    assert (run / "predictions.jsonl").read_text() == "new\n"
