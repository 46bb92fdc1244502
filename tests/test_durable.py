"""Finished work survives a crash of the machine: every file a DONE record vouches for, and every file renamed over
another, is flushed to disk first (a rename can reach the disk before the data it names)."""

import os
from pathlib import Path

import pytest

from langmix import durable
from langmix.results import write_predictions
from langmix.study import state


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
    return events


def test_a_file_is_flushed_before_it_is_renamed_and_its_folder_after(tmp_path, disk_events):
    state.write_json_atomic(tmp_path / "status.json", {"state": "running"})
    tmp_name = disk_events[0][1]
    assert tmp_name.startswith("status.json.") and tmp_name.endswith(".tmp")
    assert disk_events == [("fsync", tmp_name), ("rename", "status.json"), ("fsync", tmp_path.name)]
    write_predictions([{"id": 1}], tmp_path / "predictions.jsonl")
    assert disk_events[-2:] == [("rename", "predictions.jsonl"), ("fsync", tmp_path.name)]
    assert not list(tmp_path.glob("*.tmp"))


def test_done_is_written_only_after_every_output_and_its_folder_reach_the_disk(tmp_path, disk_events):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "model.safetensors").write_bytes(b"weights")
    (run / "results.parquet").write_bytes(b"table")
    state.mark_done(run, ["final", "results.parquet"])
    done_rename = disk_events.index(("rename", state.DONE))
    before = disk_events[:done_rename]
    for name in ("model.safetensors", "results.parquet", "final", "run"):
        assert ("fsync", name) in before, name


def test_a_swap_syncs_the_moved_files_folder_before_its_done(tmp_path, disk_events):
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").write_text("old\n")
    staged = state.staging_dir(run)
    (staged / "predictions.jsonl").write_text("new\n")
    state.swap_in(run, staged, ["predictions.jsonl"], ["predictions.jsonl"])
    moved = disk_events.index(("rename", "predictions.jsonl"))
    done = disk_events.index(("rename", state.DONE))
    assert ("fsync", "run") in disk_events[moved:done]
    assert (run / "predictions.jsonl").read_text() == "new\n"
