"""A run directory holding another run's files (one moved or copied over it) is `foreign`: never read as the run its
name is for, named by status, query and report, and redone by the next `study run` (its files set aside). DONE
records the key of the run it vouches for; a run finished before it did is checked from what it holds (a training's
identity.json, an evaluation's results.parquet)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.config import StudyConfig
from langmix.study import state
from langmix.study.grid import expand
from langmix.study.runner import eval_dir, finished_eval_dirs, run_study, study_status, study_tables, train_dir


@pytest.fixture
def study(tmp_path, finished_small_study) -> StudyConfig:
    """A copy of the session's finished small study (base, en, en+sw; math; one seed)."""
    shutil.copytree(finished_small_study.parent / "out" / "t", tmp_path / "out" / "t")
    return StudyConfig.model_validate({**yaml.safe_load(finished_small_study.read_text()),
                                       "output_dir": str(tmp_path / "out")})


def _job(cfg: StudyConfig, mixture: str):
    [job] = [job for job in expand(cfg) if job.evals[0].mixture_name == mixture]
    return job


def _evals(cfg: StudyConfig) -> tuple[Path, Path]:
    return eval_dir(cfg, _job(cfg, "en").evals[0]), eval_dir(cfg, _job(cfg, "en+sw").evals[0])


def _as_before_keys(run: Path) -> None:
    """The run as a langmix that recorded no key in DONE left it."""
    record = json.loads((run / state.DONE).read_text())
    record.pop("key", None)
    (run / state.DONE).write_text(json.dumps(record))


def _states(cfg: StudyConfig) -> dict[str, str]:
    return {f"{kind}/{spec.mixture_name}": s for kind, spec, s, _ in study_status(cfg)}


def _query(cfg: StudyConfig, sql: str):
    return CliRunner().invoke(app, ["query", str(Path(cfg.output_dir) / cfg.name), sql])


def test_done_records_the_key_of_its_run(study):
    en_eval, _ = _evals(study)
    en_train = train_dir(study, _job(study, "en").train)
    assert json.loads((en_eval / state.DONE).read_text())["key"] == _job(study, "en").evals[0].key
    assert json.loads((en_train / state.DONE).read_text())["key"] == _job(study, "en").train.key


@pytest.mark.parametrize("old", [False, True], ids=["keyed", "before-keys"])
def test_an_evaluation_moved_over_another_is_foreign_and_read_as_neither(study, old):
    """`rm -rf eval/<en+sw>; mv eval/<en> eval/<en+sw>`: status said en+sw done and en pending, and the tables
    held en's rows (mixture en) while en+sw had none."""
    en, en_sw = _evals(study)
    if old:
        _as_before_keys(en)  # checked from its results.parquet's run_hash
    shutil.rmtree(en_sw)
    en.rename(en_sw)
    assert state.run_state(en_sw) == "foreign"
    assert state.verify_done(en_sw) == (f"it holds the files of run {en.name.rsplit('-', 1)[1]}, not of "
                                        f"{en_sw.name.rsplit('-', 1)[1]} (a directory copied or moved over it)")
    assert _states(study) == {"eval/base": "done", "train/en": "done", "eval/en": "pending", "train/en+sw": "done",
                              "eval/en+sw": "foreign"}
    assert finished_eval_dirs(study) == [eval_dir(study, _job(study, "base").evals[0])]
    query = _query(study, "SELECT mixture, count(*) AS n FROM items GROUP BY mixture")
    assert query.exit_code == 0, query.output
    assert ("not in these views: 2 of 3 planned evaluations (1 foreign, 1 pending): tiny/en/math/s0, "
            "tiny/en+sw/math/s0" in query.output)
    assert query.output.split()[-2:] == ["base", "12"]  # the base run's rows alone
    status = CliRunner().invoke(app, ["study", "status", str(Path(study.output_dir) / study.name)],
                                env={"COLUMNS": "400"})
    assert status.exit_code == 0, status.output
    assert "done: 3, foreign: 1, pending: 1" in status.output
    assert "1 run(s) hold another run's files" in status.output


@pytest.mark.parametrize("old", [False, True], ids=["keyed", "before-keys"])
def test_an_evaluation_copied_over_another_is_counted_once(study, old):
    """With a copy instead of a move, `query` counted en/math/s0 twice (its rows under both directories)."""
    en, en_sw = _evals(study)
    if old:
        _as_before_keys(en)
    shutil.rmtree(en_sw)
    shutil.copytree(en, en_sw)
    assert state.run_state(en) == "done" and state.run_state(en_sw) == "foreign"
    rows = study_tables(study).execute("SELECT mixture, count(*), count(DISTINCT eval_hash) FROM items "
                                       "GROUP BY mixture ORDER BY mixture").fetchall()
    assert rows == [("base", 12, 1), ("en", 12, 1)]


def test_an_evaluation_finished_before_keys_is_still_done_where_it_is(study):
    """Backward compatibility: a DONE without a key counts as its directory's run where its files agree (or say
    nothing)."""
    en, en_sw = _evals(study)
    _as_before_keys(en)
    assert state.run_state(en) == "done"
    _as_before_keys(en_sw)
    (en_sw / "results.parquet").rename(en_sw / "kept.parquet")
    record = json.loads((en_sw / state.DONE).read_text())
    record["files"]["kept.parquet"] = record["files"].pop("results.parquet")
    (en_sw / state.DONE).write_text(json.dumps(record))
    assert state.run_state(en_sw) == "done"  # nothing it holds names its run: its name's


@pytest.mark.parametrize("old", [False, True], ids=["keyed", "before-keys"])
def test_a_training_moved_over_another_is_foreign_and_retrained(study, old, caplog):
    """The moved training is checked by its DONE (or, before keys, its identity.json's train_key); the next
    `study run` sets its files aside (a training would refuse another run's checkpoints) and trains both."""
    en_train = train_dir(study, _job(study, "en").train)
    en_sw_train = train_dir(study, _job(study, "en+sw").train)
    if old:
        _as_before_keys(en_train)
    shutil.rmtree(en_sw_train)
    en_train.rename(en_sw_train)
    assert state.run_state(en_sw_train) == "foreign"
    assert _states(study)["train/en+sw"] == "foreign" and _states(study)["train/en"] == "pending"
    outcome = run_study(study)
    assert not outcome["failed"], outcome
    # en+sw's evaluation may have been made from the files set aside (an older langmix evaluated them): redone
    en_sw_eval = _evals(study)[1]
    assert sorted(outcome["done"]) == sorted([f"train/{en_train.name}", f"train/{en_sw_train.name}",
                                              f"eval/{en_sw_eval.name}"])
    assert set(_states(study).values()) == {"done"}
    [aside] = en_sw_train.glob(f"{state.FOREIGN}*")
    assert json.loads((aside / "identity.json").read_text())["train_key"] == _job(study, "en").train.key
    assert (aside / "final").is_dir()
    assert json.loads((en_sw_train / "identity.json").read_text())["train_key"] == _job(study, "en+sw").train.key
    assert f"held the files of run {_job(study, 'en').train.key}" in caplog.text


def test_the_next_study_run_redoes_an_evaluation_moved_over_another(study):
    en, en_sw = _evals(study)
    shutil.rmtree(en_sw)
    en.rename(en_sw)
    outcome = run_study(study)
    assert sorted(outcome["done"]) == sorted([f"eval/{en.name}", f"eval/{en_sw.name}"]) and not outcome["failed"]
    assert state.run_state(en) == "done" and state.run_state(en_sw) == "done"
    rows = study_tables(study).execute("SELECT mixture, eval_hash, count(*) FROM items GROUP BY ALL "
                                       "ORDER BY mixture").fetchall()
    assert [(m, n) for m, _, n in rows] == [("base", 12), ("en", 12), ("en+sw", 12)]
    base = eval_dir(study, _job(study, "base").evals[0])
    assert [h for _, h, _ in rows] == [p.name.rsplit("-", 1)[1] for p in (base, en, en_sw)]
    [aside] = en_sw.glob(f"{state.FOREIGN}*")  # en's files, kept where they were found
    assert (aside / "results.parquet").is_file() and not (en_sw / state.CLAIM).exists()


@pytest.mark.parametrize("old", [False, True], ids=["keyed", "before-keys"])
def test_a_set_aside_interrupted_after_two_moves_is_completed_by_the_next_run(study, old, monkeypatch):
    """`sorted(iterdir())` moved DONE first: killed after it, the run read `interrupted`, the next run did not
    finish setting it aside and overwrote the moved run's predictions, items and results."""
    en, en_sw = _evals(study)
    if old:
        _as_before_keys(en)
    originals = {p.name: p.read_bytes() for p in en.iterdir() if p.is_file()}
    shutil.rmtree(en_sw)
    en.rename(en_sw)
    moves, replace = [], os.replace

    def killed_after_two(src, dst):
        if len(moves) == 2:
            raise KeyboardInterrupt("killed")
        moves.append(Path(src).name)
        replace(src, dst)

    monkeypatch.setattr(state.os, "replace", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        state.prepare_redo(en_sw, "foreign")
    monkeypatch.setattr(state.os, "replace", replace)
    assert state.DONE not in moves and state.run_state(en_sw) == "foreign"
    outcome = run_study(study)
    assert f"eval/{en_sw.name}" in outcome["done"] and state.run_state(en_sw) == "done"
    asides = sorted(en_sw.glob(f"{state.FOREIGN}*"))
    assert len(asides) == 2  # the interrupted set-aside's and the one completing it
    kept = {p.name: p.read_bytes() for aside in asides for p in aside.iterdir()}
    assert kept == originals  # every file of the moved run, unchanged


def _unfinished_copy_of_en_over_en_sw(cfg: StudyConfig) -> tuple[Path, Path]:
    """train/<en> copied over train/<en+sw> while en was still training (no DONE, no final weights)."""
    en_train = train_dir(cfg, _job(cfg, "en").train)
    en_sw_train = train_dir(cfg, _job(cfg, "en+sw").train)
    shutil.rmtree(en_sw_train)
    shutil.copytree(en_train, en_sw_train)
    (en_sw_train / state.DONE).unlink()
    shutil.rmtree(en_sw_train / "final")
    return en_train, en_sw_train


def test_an_unfinished_training_copied_over_another_is_foreign_and_retrained(study):
    """Without a DONE it read `interrupted`, and every `study run` failed on it ("holds another run's training")
    after writing its config.yaml and mixture over the copied run's."""
    _, en_sw_train = _unfinished_copy_of_en_over_en_sw(study)
    config = (en_sw_train / "config.yaml").read_bytes()
    assert state.run_state(en_sw_train) == "foreign"
    outcome = run_study(study)
    assert not outcome["failed"] and f"train/{en_sw_train.name}" in outcome["done"], outcome
    assert state.run_state(en_sw_train) == "done"
    [aside] = en_sw_train.glob(f"{state.FOREIGN}*")
    assert json.loads((aside / "identity.json").read_text())["train_key"] == _job(study, "en").train.key
    assert (aside / "config.yaml").read_bytes() == config  # set aside as found, never written over


def test_a_training_writes_nothing_over_another_runs_training(study):
    """`execute_train` checks identity.json before it writes config.yaml and mixture/ (a foreign directory that
    reached it unset-aside, e.g. copied in after the run was claimed)."""
    from langmix.errors import UserInputError
    from langmix.study.progress import Hooks
    from langmix.study.runner import execute_train

    _, en_sw_train = _unfinished_copy_of_en_over_en_sw(study)
    before = {p: p.read_bytes() for p in en_sw_train.rglob("*") if p.is_file()}
    spec = _job(study, "en+sw").train
    en_key = _job(study, "en").train.key
    with pytest.raises(UserInputError, match=f"holds another run's training \\(train key {en_key}, not {spec.key}"):
        execute_train(spec, en_sw_train, None, "unused", [], Hooks())
    assert {p: p.read_bytes() for p in en_sw_train.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("damage", ["copied-keyed", "copied-before-keys", "corrupt"])
def test_an_evaluation_of_a_training_redone_is_set_aside_and_redone(study, damage, caplog):
    """An older langmix evaluated train/<en> copied over train/<en+sw> (its predictions were en's); the next `study
    run` found the training foreign and retrained it, but the en+sw evaluation stayed done, in every table."""
    en_train = train_dir(study, _job(study, "en").train)
    en_sw_train = train_dir(study, _job(study, "en+sw").train)
    en_eval, en_sw_eval = _evals(study)
    if damage == "corrupt":
        (en_sw_train / "train_summary.json").write_text("{}")
    else:
        shutil.rmtree(en_sw_train)
        shutil.copytree(en_train, en_sw_train)
        if damage == "copied-before-keys":
            _as_before_keys(en_sw_train)  # identity.json names en's key
        for name in ("predictions.jsonl", "items.parquet"):  # evaluated from en's model: en's outputs
            shutil.copy(en_eval / name, en_sw_eval / name)
        record = json.loads((en_sw_eval / state.DONE).read_text())
        state.mark_done(en_sw_eval, list(record["files"]), record["key"])
    evaluated = {p.name: p.read_bytes() for p in en_sw_eval.iterdir() if p.is_file()}
    en_done = (en_eval / state.DONE).read_bytes()
    assert _states(study)["eval/en+sw"] == "done" and _states(study)["train/en+sw"] == damage.split("-")[0].replace(
        "copied", "foreign")
    outcome = run_study(study)
    assert not outcome["failed"], outcome
    assert sorted(outcome["done"]) == sorted([f"train/{en_sw_train.name}", f"eval/{en_sw_eval.name}"])
    assert set(_states(study).values()) == {"done"}
    assert (en_eval / state.DONE).read_bytes() == en_done  # the other training's evaluation is kept
    [stale] = en_sw_eval.glob(f"{state.STALE}*")
    assert {p.name: p.read_bytes() for p in stale.iterdir()} == evaluated  # set aside, never deleted
    assert f"{en_sw_eval.name} was evaluated from a training that is redone" in caplog.text


def test_a_multi_gpu_launch_sets_aside_the_evaluations_of_a_training_it_redoes(study, monkeypatch):
    """The SLURM multi-GPU path clears a training for its redo itself (`_train_distributed`): the same rule."""
    import sys

    from langmix.study import slurm_job

    en_sw_train = train_dir(study, _job(study, "en+sw").train)
    (en_sw_train / "train_summary.json").write_text("{}")  # corrupt
    _, en_sw_eval = _evals(study)
    monkeypatch.setattr(slurm_job, "accelerate_command", lambda *a: [sys.executable, "-c", "pass"])
    slurm_job._train_distributed(study, _job(study, "en+sw"))
    [stale] = en_sw_eval.glob(f"{state.STALE}*")
    assert (stale / state.DONE).is_file() and (stale / "results.parquet").is_file()
    assert state.run_state(en_sw_eval) == "pending"
