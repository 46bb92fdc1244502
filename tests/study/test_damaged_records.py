"""A run directory's JSON records damaged from outside (each is written whole, by tmp + rename, so a damaged one was
garbled by something else: a disk, a sync tool, a hand edit): no command on the study crashes on one. A damaged swap
journal (SWAP.json) makes its run `corrupt` (named like any corrupt run, redone by the next `study run`); a damaged
DONE the same; a damaged claim or status is read as absent; a damaged training identity is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.config import StudyConfig
from langmix.study import slurm, state
from langmix.study.grid import expand
from langmix.study.rescore_stale import is_stale
from langmix.study.runner import eval_dir, finished_eval_dirs, run_study, study_status

CORRUPT_EN = "1 of 3 planned evaluations (1 corrupt): tiny/en/math/s0; `langmix study status` shows each"


@pytest.fixture
def study(tmp_path, finished_small_study) -> StudyConfig:
    """A copy of the session's finished small study (base, en, en+sw; math; one seed)."""
    shutil.copytree(finished_small_study.parent / "out" / "t", tmp_path / "out" / "t")
    return StudyConfig.model_validate({**yaml.safe_load(finished_small_study.read_text()),
                                       "output_dir": str(tmp_path / "out")})


def _en_eval(cfg: StudyConfig) -> Path:
    [ev] = [ev for job in expand(cfg) for ev in job.evals if ev.mixture_name == "en"]
    return eval_dir(cfg, ev)


def _invoke(*argv) -> object:
    return CliRunner().invoke(app, [str(a) for a in argv], env={"COLUMNS": "400"})


@pytest.mark.parametrize("journal", ["", '{"staging": ".stag', "[]", '{"staging": ".staging"}',
                                     '{"staging": "..", "files": [], "done": {"files": {"x": "y"}}}',
                                     '{"staging": ".staging", "files": ["../x"], "done": {"files": {"x": "y"}}}'])
def test_a_damaged_swap_journal_makes_its_run_corrupt_and_no_command_crashes(study, journal):
    """Every command on the study exited 1 with a JSONDecodeError until SWAP.json was deleted by hand."""
    run = _en_eval(study)
    (run / state.SWAP).write_text(journal)
    (run / state.STAGING).mkdir()
    (run / state.STAGING / "predictions.jsonl").write_text("staged\n")
    done = (run / state.DONE).read_bytes()
    assert state.run_state(run) == "corrupt"
    assert (run / state.SWAP).read_text() == journal  # left as found: nothing it names is moved or deleted
    assert (run / state.STAGING / "predictions.jsonl").read_text() == "staged\n"
    assert (run / state.DONE).read_bytes() == done and len(list(run.parent.iterdir())) == 3
    root = run.parents[1]
    status = _invoke("study", "status", root)
    assert status.exit_code == 0, status.output
    assert "corrupt: 1, done: 4" in status.output
    query = _invoke("query", root, "SELECT count(*) AS n FROM items")
    assert query.exit_code == 0, query.output
    assert f"not in these views: {CORRUPT_EN}" in query.output
    assert query.output.split()[-2:] == ["n", "24"]  # base and en+sw: 2 x 3 languages x 4 items
    report = _invoke("report", root)
    assert report.exit_code == 0, report.output
    assert f"Not in this report: {CORRUPT_EN}" in (root / "report" / "report.md").read_text()
    dry = _invoke("study", "run", root, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert ["eval", "corrupt", run.name] in [line.split() for line in dry.output.splitlines()]
    assert "1 of 5 runs to do" in dry.output


def test_the_next_study_run_redoes_a_run_whose_journal_is_damaged(study):
    run = _en_eval(study)
    (run / state.SWAP).write_text('{"staging": ".stag')
    (run / state.STAGING).mkdir()
    outcome = run_study(study)
    assert outcome["done"] == [f"eval/{run.name}"] and not outcome["failed"]
    assert state.run_state(run) == "done"
    assert not (run / state.SWAP).exists() and not (run / state.STAGING).exists()
    assert len(finished_eval_dirs(study)) == 3


@pytest.mark.parametrize("done", ["", "[]", '"x"', '{"files": []}', '{"files": "x"}', '{"files": {}}',
                                  '{"files": {"results.parquet": 5}}', '{"files": {"../../t/study.yaml": "x"}}',
                                  "KEY:''", "KEY:7", "KEY:null"])
def test_a_damaged_done_makes_its_run_corrupt(study, done):
    """A DONE whose `files` was not a mapping raised AttributeError; one vouching for no file made a run done."""
    run = _en_eval(study)
    if done.startswith("KEY:"):  # a DONE whose files hold but whose key is no run's key (an empty key read foreign)
        record = json.loads((run / state.DONE).read_text())
        (run / state.DONE).write_text(json.dumps({**record, "key": yaml.safe_load(done[4:])}))
    else:
        (run / state.DONE).write_text(done)
    assert state.verify_done(run) is not None
    assert state.run_state(run) == "corrupt"
    assert [s for kind, _, s, p in study_status(study) if p == run] == ["corrupt"]
    assert run not in finished_eval_dirs(study)


@pytest.mark.parametrize("claim", ["", "[]", '"x"', '{"heartbeat": "soon"}', '{"heartbeat": null}',
                                   '{"heartbeat": NaN}',
                                   '{"owner": [], "heartbeat": NOW}', '{"owner": "me", "heartbeat": NOW}'])
def test_a_damaged_claim_is_read_as_none_and_never_crashes(study, claim):
    """A claim that was JSON but not a claim (a list, a heartbeat that is no number, an owner that is no mapping)
    raised AttributeError or TypeError from `run_state`, so from every command on the study."""
    run = _en_eval(study)
    (run / state.CLAIM).write_text(claim.replace("NOW", str(time.time())))
    assert state.read_claim(run) is None
    assert not state.claim_is_live(state.read_claim(run))
    assert state.run_state(run) == "done"
    assert state.try_claim(run) is None  # an unreadable claim this young may be being written: left to its owner
    old = time.time() - 2 * state.STALE_S
    os.utime(run / state.CLAIM, (old, old))
    claim_now = state.try_claim(run)  # an old one is abandoned: taken over
    assert claim_now is not None
    with claim_now:
        pass
    assert not (run / state.CLAIM).exists()


@pytest.mark.parametrize("damaged", ["[]", '"x"', "{"])
def test_a_claim_file_garbled_while_held_never_crashes_its_owner(tmp_path, damaged):
    run = tmp_path / "run-abc"
    claim = state.try_claim(run)
    assert claim is not None
    with claim:
        (run / state.CLAIM).write_text(damaged)
        claim.last_beat = time.time() - 2 * state.HEARTBEAT_S - 0.5  # heartbeats overdue: `ensure` reads it
        claim.ensure()  # cannot tell whose it is: still this process's until STALE_S has passed
    assert (run / state.CLAIM).read_text() == damaged  # not another process's file to delete


@pytest.mark.parametrize("status", ["", "[]", '"failed"', "7"])
def test_a_damaged_status_is_read_as_none(tmp_path, status):
    run = tmp_path / "run-abc"
    run.mkdir()
    (run / "status.json").write_text(status)
    assert state.read_status(run) is None
    assert state.run_state(run) == "pending"
    (run / "checkpoints").mkdir()
    assert state.run_state(run) == "interrupted"


def test_a_damaged_slurm_job_record_is_read_as_empty(study, caplog):
    """Read as empty, and said (it was silent: `cancel` would miss the jobs it named)."""
    (state_dir := Path(study.output_dir) / study.name / "slurm").mkdir()
    for text in ("", "[]", '{"a": '):
        (state_dir / "jobs.json").write_text(text)
        caplog.clear()
        with caplog.at_level("WARNING", logger="langmix.study.slurm"):
            assert slurm.read_job_ids(study) == {} and slurm.recorded_job_ids(study) == []
        assert any("jobs.json is damaged and read as empty" in r.getMessage() for r in caplog.records), text
    (state_dir / "jobs.json").write_text('{"job-a": ["1", "2"], "job-b": "3"}')
    assert slurm.read_job_ids(study) == {"job-a": "2", "job-b": "3"}


@pytest.mark.parametrize("record", ["[]", '"x"', '{"digest": 5}', '{"task": "math"}'])
def test_a_scorer_record_that_is_not_one_counts_as_an_unknown_scorer(study, record):
    """An unknown scorer: the run is re-scored from its outputs before any table (never a crash)."""
    from langmix.study.eval_outputs import SCORER_FILE, recorded_scorer, scorer_record

    run = _en_eval(study)
    (run / SCORER_FILE).write_text(record)
    state.mark_done(run, ["predictions.jsonl", "items.parquet", "results.parquet", SCORER_FILE])
    assert recorded_scorer(run) is None
    assert scorer_record(run) in (None, json.loads(record))
    [spec] = [ev for job in expand(study) for ev in job.evals if ev.mixture_name == "en"]
    assert is_stale(spec, run)


@pytest.mark.parametrize("identity", ["", "[]", '{"train_key": '])
def test_a_damaged_training_identity_is_a_one_line_error_where_checkpoints_are_kept(tmp_path, identity):
    """`check_identity` and `finished` raised JSONDecodeError: a study run recorded the traceback's last line."""
    from langmix.train import IdentityError, check_identity, finished

    out = tmp_path / "run"
    (out / "final").mkdir(parents=True)
    (out / "train_summary.json").write_text("{}")
    (out / "identity.json").write_text(identity)
    assert not finished(out, {"train_key": "abc"})
    with pytest.raises(IdentityError, match=r"identity.json is unreadable.*cannot tell which run"):
        check_identity(out, {"train_key": "abc"})
    shutil.rmtree(out / "final")  # nothing saved yet: the record binds nothing and is replaced
    check_identity(out, {"train_key": "abc"})
    assert json.loads((out / "identity.json").read_text()) == {"train_key": "abc"}


def test_a_claim_with_a_heartbeat_far_in_the_future_is_not_live_for_ever(study):
    """A heartbeat a million seconds ahead (a damaged record, or a node's clock far off) kept the run 'running' for
    good: `study run` never started it and query/report left it out (state probe). Further ahead than STALE_S, it
    is no heartbeat: the claim is judged by its file's age, as an unreadable one."""
    run = _en_eval(study)
    owner = {"host": "node7", "pid": 123, "token": "ab"}
    (run / state.CLAIM).write_text(json.dumps({"owner": owner, "heartbeat": time.time() + 1e6}))
    assert not state.claim_is_live(state.read_claim(run))
    ahead = {"owner": owner, "heartbeat": time.time() + state.STALE_S / 2}  # a little skew: still live
    (run / state.CLAIM).write_text(json.dumps(ahead))
    assert state.claim_is_live(state.read_claim(run))


@pytest.mark.parametrize("record", [state.CLAIM, "status.json"])
def test_a_directory_where_a_record_belongs_never_crashes(tmp_path, record):
    """status.json or claim.json as a directory: writing the status raised IsADirectoryError inside the failure
    handler, and taking over the claim raised it on the directory it had renamed (state probe)."""
    run = tmp_path / "run-abc"
    (run / record / "x").mkdir(parents=True)
    old = time.time() - 2 * state.STALE_S
    os.utime(run / record, (old, old))
    state.write_status(run, "failed", error="boom")
    claim = state.try_claim(run)
    assert claim is not None
    with claim:
        pass
    assert state.read_status(run)["state"] == "failed" and not (run / state.CLAIM).exists()
    assert [p.name for p in run.iterdir()] == ["status.json"]


@pytest.mark.parametrize("name", [state.DONE, state.SWAP])
def test_a_done_or_journal_that_is_a_folder_is_cleared_for_the_redo(study, name):
    """`prepare_redo` crashed with IsADirectoryError on `(run / DONE).unlink()` where DONE (or SWAP.json) was a
    directory, so the run could never be redone."""
    run = _en_eval(study)
    (run / name).unlink(missing_ok=True)
    (run / name).mkdir()
    (run / name / "inside").write_text("x")
    assert state.run_state(run) == "corrupt"
    state.prepare_redo(run, "corrupt")
    assert not (run / state.DONE).exists() and not (run / state.SWAP).exists()
    assert (run / "results.parquet").is_file()  # the run's own files stay until its redo rewrites them
