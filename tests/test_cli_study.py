"""`report`, `query` and `plan` on a finished study (found by a new-user probe): what they accept (a config file or
the study's output directory, wherever it now is), the statements `query` runs, and the runs each leaves out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langmix.cli import app

runner = CliRunner()
LEFT_OUT = "1 of 3 planned evaluations (1 corrupt): tiny/base/math/s0; `langmix study status` shows each"


@pytest.fixture
def copied(tmp_path, finished_small_study) -> Path:
    """A copy of the finished study's output directory elsewhere (its study.yaml still names the original)."""
    out = tmp_path / "moved" / "t"
    shutil.copytree(finished_small_study.parent / "out" / "t", out)
    return out


def _invoke(*argv) -> object:
    return runner.invoke(app, [str(a) for a in argv])


@pytest.mark.parametrize("sql", ["DROP VIEW items", "SELECT 1; DROP VIEW items", "CREATE TABLE t AS SELECT 1",
                                 "SET threads = 1", "COPY (SELECT 1) TO '{tmp}/x.csv'"])
def test_query_runs_one_select_and_nothing_else(tmp_path, finished_small_study, sql):
    """DDL used to print 'Empty DataFrame Columns: [Success]' and exit 0 (DuckDB answers it with a table)."""
    result = _invoke("query", finished_small_study, sql.replace("{tmp}", str(tmp_path)))
    assert result.exit_code == 2, result.output
    assert "the query returned no table" in result.output and "Success" not in result.output
    assert not (tmp_path / "x.csv").exists()
    ok = _invoke("query", finished_small_study, "SELECT count(*) AS n FROM items")
    assert ok.exit_code == 0, ok.output
    assert ok.output.split()[-2:] == ["n", "36"]  # 3 evaluations x 3 languages x 4 items: the views are intact
    assert "not in these views" not in ok.output  # every run is done


def test_commands_read_a_copied_study_directory_and_name_the_runs_they_leave_out(tmp_path, copied):
    """`report DIR` refused a directory that `plan --from DIR` accepted, and both read the runs where the study was
    first written (its study.yaml's output_dir), not the copy named; none of query and plan named a corrupt run."""
    base = next((copied / "eval").glob("tiny-base-math-*"))
    with open(base / "items.parquet", "ab") as f:  # corrupt a run of the copy only
        f.write(b"x")
    report = _invoke("report", copied)
    assert report.exit_code == 0, report.output
    assert str(copied / "report" / "report.html") in report.output
    assert f"Not in this report: {LEFT_OUT}" in (copied / "report" / "report.md").read_text()
    query = _invoke("query", copied, "SELECT count(*) AS n FROM items")
    assert query.exit_code == 0, query.output
    assert f"not in these views: {LEFT_OUT}" in query.output
    assert query.output.split()[-2:] == ["n", "24"]  # the base run's 12 rows are left out
    written = tmp_path / "next.yaml"
    plan = _invoke("plan", "--from", copied, "--targets", "sw", "--budget", "100", "--max-languages", "2",
                   "--write", written)
    assert plan.exit_code == 0, plan.output
    assert f"warning: not in this plan: {LEFT_OUT}" in plan.output
    assert f"# warning: not in this plan: {LEFT_OUT}" in written.read_text()  # the written config says so too
    status = _invoke("study", "status", copied)  # the copy's runs: its corrupt one, not the original's done one
    assert status.exit_code == 0, status.output
    assert "corrupt" in status.output


def test_a_directory_that_is_not_a_study_is_refused(tmp_path):
    for argv in (["report", tmp_path], ["query", tmp_path, "SELECT 1"], ["study", "status", tmp_path],
                 ["plan", "--from", tmp_path, "--targets", "sw", "--budget", "10"]):
        result = _invoke(*argv)
        assert result.exit_code == 2, result.output
        assert "is a directory without a study.yaml" in result.output


def test_plan_refuses_english_as_a_target(finished_small_study):
    result = _invoke("plan", "--from", finished_small_study, "--targets", "sw,en", "--budget", "100")
    assert result.exit_code == 2, result.output
    assert "English cannot be a target" in result.output


def test_a_study_stage_line_shows_training_steps_of_their_total_with_the_latest_loss():
    """The line a study shows per process: a training stage started before its steps are known, started again
    with them (resumed: at its checkpoint's step), the latest loss in its description; then the next stage on
    the same line, with its own total (none while unknown)."""
    from langmix.cli import _progress
    from langmix.cli_study import _StageLine

    progress = _progress()  # not started: nothing is drawn
    line = _StageLine(progress, "w1 ")
    hooks = line.hooks()
    hooks.stage("train tiny-en-math-s0", 0)
    assert progress.tasks[0].total is None
    hooks.stage("train tiny-en-math-s0", 300)
    hooks.advance(120)  # resumed at checkpoint-120
    for _ in range(30):
        hooks.advance(1)
    hooks.note("loss 1.234")
    [task] = progress.tasks
    assert (task.completed, task.total) == (150, 300)
    assert task.description == "  w1 train tiny-en-math-s0 (loss 1.234)"
    hooks.stage("evaluate tiny-en-math-s0", 12)
    hooks.advance(12)
    [task] = progress.tasks
    assert (task.completed, task.total, task.description) == (12, 12, "  w1 evaluate tiny-en-math-s0")
    hooks.stage("train tiny-en-math-s1", 0)
    assert progress.tasks[0].total is None and progress.tasks[0].completed == 0


def _record_jobs(study: Path) -> dict[str, str]:
    """A jobs.json as `study run --launcher slurm` writes it (job slug: job id), with ids SLURM does not know."""
    import json

    from langmix.config_loading import load_config
    from langmix.study.grid import expand

    cfg = load_config(study / "study.yaml", [f"output_dir={study.parent}"])
    ids = {job.slug: str(99999900 + i) for i, job in enumerate(expand(cfg))}
    (study / "slurm").mkdir(exist_ok=True)
    (study / "slurm" / "jobs.json").write_text(json.dumps(ids))
    return ids


def test_status_shows_the_slurm_job_of_every_run(copied):
    """The eval rows of trained runs had an empty `slurm` column: job ids are recorded under the job's slug (its
    training run's), and the table looked each row up by its own run's slug."""
    _record_jobs(copied)
    result = runner.invoke(app, ["study", "status", str(copied)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if " tiny " in line]
    assert len(rows) == 5  # base eval, 2 x (train, eval)
    jobs = [next((w for w in row.split() if w.startswith("999999")), None) for row in rows]
    assert None not in jobs, result.output
    assert len(set(jobs)) == 3  # a job's train and eval rows name the same job
    assert "no longer in this study" not in result.output


def test_study_commands_take_the_study_directory_as_status_does(copied):
    """`study cancel DIR` (and `study run DIR`, `study plan DIR`) refused the output directory that `study status`
    and `report` accept ("is a directory; give the study's YAML file")."""
    _record_jobs(copied)
    cancel = _invoke("study", "cancel", copied)
    assert cancel.exit_code == 0, cancel.output
    assert "nothing to cancel" in cancel.output
    plan = _invoke("study", "plan", copied)
    assert plan.exit_code == 0, plan.output
    assert "fine-tuning runs: 2" in plan.output
    dry = _invoke("study", "run", copied, "--launcher", "local", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "0 of 5 runs to do" in dry.output  # the copy's runs, all done


def test_eval_study_takes_the_study_directory_as_study_run_does(copied):
    """`eval --study DIR` refused the output directory that `study run|status` and `report` accept."""
    result = _invoke("eval", copied, "--study")
    assert result.exit_code == 0, result.output
    assert "skipped 3" in result.output  # the copy's evaluations (base, 2 trained), all done: none redone
    assert not (copied.parent.parent / "out").exists()  # nothing written beside the copy


def test_study_commands_refuse_a_directory_that_is_not_a_study(tmp_path):
    for argv in (["study", "cancel", tmp_path], ["study", "plan", tmp_path], ["study", "run", tmp_path]):
        result = _invoke(*argv)
        assert result.exit_code == 2, result.output
        assert "is a directory without a study.yaml" in result.output


@pytest.fixture
def changed_scorer(monkeypatch):
    """What editing tasks/math.py does to the scorer's digest: every finished run is judged by another scorer."""
    from langmix import imported_source
    from langmix.tasks import base

    base.scorer_digest("math")  # its modules kept as imported
    monkeypatch.setitem(imported_source._HASHES, "langmix.tasks.math", imported_source.source_hash(b"# changed\n"))
    base.scorer_digest.cache_clear()
    yield
    base.scorer_digest.cache_clear()


def test_a_run_another_process_is_rescoring_is_named_as_left_out(copied, changed_scorer):
    """rescore_stale left a run held by another process out of the table, but the 'not in' lines were recomputed
    from the runs' states, where it is done: report, query and plan said nothing of it."""
    import json
    import time

    base = next((copied / "eval").glob("tiny-base-math-*"))
    owner = {"host": "elsewhere", "pid": 1, "process": None, "slurm_job_id": None, "token": "x"}
    (base / "claim.json").write_text(json.dumps({"owner": owner, "heartbeat": time.time() + 3600}))
    left_out = ("1 of 3 planned evaluations (1 being re-scored by another process): tiny/base/math/s0; "
                "`langmix study status` shows each")
    query = _invoke("query", copied, "SELECT count(*) AS n FROM items")
    assert query.exit_code == 0, query.output
    assert f"not in these views: {left_out}" in query.output and query.output.split()[-2:] == ["n", "24"]
    report = _invoke("report", copied)
    assert report.exit_code == 0, report.output
    assert f"Not in this report: {left_out}" in (copied / "report" / "report.md").read_text()
    plan = _invoke("plan", "--from", copied, "--targets", "sw", "--budget", "100", "--max-languages", "2")
    assert f"warning: not in this plan: {left_out}" in plan.output


def test_a_scorer_that_raises_is_one_line_and_keeps_the_runs(copied, changed_scorer, monkeypatch):
    from langmix.tasks.math import MathTask

    def buggy(self, ex, output, ctx):
        raise KeyError("oops")

    monkeypatch.setattr(MathTask, "score", buggy)
    query = _invoke("query", copied, "SELECT count(*) AS n FROM items")
    assert query.exit_code == 2 and "Traceback" not in query.output
    assert "was judged by another scorer, and re-scoring its stored outputs failed: RuntimeError" in query.output
    assert all((p / "DONE").exists() for p in (copied / "eval").iterdir())


def test_status_shows_evaluations_judged_by_another_scorer(copied, changed_scorer):
    """`study status` showed a finished evaluation judged by another scorer as plain 'done', though every table
    re-scores it first."""
    before = {p: (p / "scorer.json").read_bytes() for p in (copied / "eval").iterdir()}
    result = runner.invoke(app, ["study", "status", str(copied)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "done, other scorer: 3" in result.output and "done: 2" in result.output
    assert "3 finished evaluation(s) were judged by another scorer" in " ".join(result.output.split())
    assert {p: (p / "scorer.json").read_bytes() for p in before} == before  # status itself re-scores nothing


def test_query_verifies_each_runs_files_once(finished_small_study, monkeypatch):
    """`query` (and `report`, `plan`) verified every finished run's files twice (once for the views, once for the
    list of runs they leave out), and every training's (its adapters) for that list: each evaluation once now."""
    from langmix.study import state

    verified = []
    real = state.verify_done
    monkeypatch.setattr(state, "verify_done", lambda run: (verified.append(run.name), real(run))[1])
    ok = _invoke("query", finished_small_study, "SELECT count(*) AS n FROM items")
    assert ok.exit_code == 0, ok.output
    assert ok.output.split()[-2:] == ["n", "36"]
    assert sorted(verified) == sorted(p.name for p in (finished_small_study.parent / "out" / "t" / "eval").iterdir())


def test_tables_name_the_evaluations_made_under_other_overrides(tmp_path, copied):
    """`eval --study -s evaluation.X=...` makes new evaluation runs (evaluation.* is in the eval key) and records
    no override (it does not redefine the study), so a later plain `report`/`query`/`plan` read the old
    evaluations and said nothing of the new ones. Each names them now; given the same `-s`, each reads them."""
    def keys(names) -> set[str]:
        return {name.rsplit("-", 1)[1] for name in names}

    def hashes(*argv) -> tuple[set[str], str]:
        result = _invoke("query", copied, "SELECT DISTINCT eval_hash AS h FROM items", *argv)
        assert result.exit_code == 0, result.output
        lines = [line.strip() for line in result.output.splitlines()]
        return set(lines[lines.index("h") + 1:]), result.output

    before = {p.name for p in (copied / "eval").iterdir()}
    override = ["-s", "evaluation.max_new_tokens.math=4"]
    ev = _invoke("eval", copied, "--study", *override)
    assert ev.exit_code == 0, ev.output
    assert "done 3" in ev.output  # base, English-only, en+sw: three new evaluation directories
    new = {p.name for p in (copied / "eval").iterdir()} - before
    assert len(new) == 3 and all((copied / "eval" / name / "DONE").exists() for name in new)
    other = f"3 finished evaluations in {copied / 'eval'} are not in this config's grid: "
    hint = ("made under other settings (-s overrides, an earlier config, data since changed, or a langmix whose run "
            "keys differed): pass the same overrides to include them")
    read, output = hashes()
    assert read == keys(before)  # the config as written: its own three evaluations
    line = next(line for line in output.splitlines() if other in line)
    assert line == f"not in these views: {other}{', '.join(sorted(new))}; {hint}"
    read, output = hashes(*override)
    assert read == keys(new)  # the same -s: the new ones, and the config's own named as the others
    assert f"not in these views: {other}{', '.join(sorted(before))}; {hint}" in output
    report = _invoke("report", copied)
    assert report.exit_code == 0, report.output
    assert f"not in this report: {other}{', '.join(sorted(new))}; {hint}" in report.output
    plan = _invoke("plan", "--from", copied, "--targets", "sw", "--budget", "100", "--max-languages", "2",
                   "--write", tmp_path / "next.yaml", *override)
    assert plan.exit_code == 0, plan.output
    assert f"warning: not in this plan: {other}{', '.join(sorted(before))}; {hint}" in plan.output
    assert (tmp_path / "next.yaml").read_text().startswith(
        f"# langmix plan --from {copied} --targets sw --budget 100 --max-languages 2 "
        "-s evaluation.max_new_tokens.math=4\n")


def test_an_evaluation_blocked_by_a_failed_training_names_that_training(tmp_path, tiny_model_path):
    """After a training failed, its evaluation was reported as `not finished: eval/<slug> (see its status.json)`,
    a directory that was never made; it is blocked, and the training's status.json holds the error."""
    import json

    import yaml

    from langmix.config import StudyConfig
    from langmix.study.grid import expand
    from tests.conftest import small_study_dict

    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            training={"method": "lora", "lora_target_modules": ["nope_proj"]})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = _invoke("study", "run", config, "--no-report")
    assert result.exit_code == 1, result.output
    job = expand(StudyConfig.model_validate(tree))[0]
    lines = " ".join(result.output.split())  # rich wraps long lines
    assert f"not finished: train/{job.train.slug} (see its status.json)" in lines
    assert (f"blocked: eval/{job.evals[0].slug}: its training train/{job.train.slug} failed (see that run's "
            f"status.json)") in lines
    assert "not finished: eval/" not in lines
    status = json.loads((tmp_path / "out" / "t" / "train" / job.train.slug / "status.json").read_text())
    assert status["state"] == "failed" and "nope_proj" in status["error"]
    assert not (tmp_path / "out" / "t" / "eval" / job.evals[0].slug).exists()


def _rewrite_results(run: Path, change) -> None:
    """Rewrite a finished evaluation's results.parquet through `change` (a DataFrame -> DataFrame) and mark it
    done again, as if it had been written so."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from langmix.results import SCHEMA
    from langmix.study.eval_outputs import EVAL_OUTPUTS
    from langmix.study.state import mark_done

    frame = change(pq.read_table(run / "results.parquet").to_pandas())
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), run / "results.parquet")
    mark_done(run, EVAL_OUTPUTS)


def test_evaluations_from_before_context_fitting_beside_ones_that_exceeded_it_are_named(copied):
    """Evaluations generated before answers were fitted to the model's context have no `context_exceeded` rows;
    beside evaluations whose items exceeded it, their answers to such items ran past the context: one study
    compared the two behaviours without a word."""
    evals = sorted((copied / "eval").iterdir())
    clean = _invoke("query", copied, "SELECT count(*) AS n FROM results WHERE metric = 'context_exceeded'")
    assert clean.exit_code == 0 and "generated before answers were fitted" not in clean.output
    assert int(clean.output.split()[-1]) > 0  # every evaluation of this langmix records it (0 here)

    def exceeded(frame):
        frame.loc[frame["metric"] == "context_exceeded", "value"] = 0.25
        return frame

    _rewrite_results(evals[0], exceeded)
    _rewrite_results(evals[1], lambda frame: frame[frame["metric"] != "context_exceeded"])
    result = _invoke("query", copied, "SELECT count(*) AS n FROM items")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    old_hash = evals[1].name.rsplit("-", 1)[-1]
    assert f"1 evaluation ({old_hash}) generated before answers were fitted to the model's context, beside 1 " \
           "evaluation with items whose prompt and answer exceed it" in text, text
    report = _invoke("report", copied)
    assert report.exit_code == 0, report.output
    assert "generated before answers were fitted" in (copied / "report" / "report.md").read_text()


@pytest.mark.parametrize("sql", [
    "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{items}' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{items}' (FORMAT parquet, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{tmp}/x.csv'",
    "COPY (SELECT 1 AS a) TO '{tmp}/x.csv'",
    "SELECT * FROM read_csv('{tmp}/secret.csv')",
    "SELECT * FROM read_text('{tmp}/secret.csv')",
    "SELECT * FROM read_parquet('{items}')",
    "SELECT * FROM glob('{tmp}/*')",
    "EXPLAIN ANALYZE SELECT * FROM read_csv('{tmp}/secret.csv')",
    "ATTACH '{tmp}/x.duckdb'", "SELECT * FROM read_blob('{items}')",
    "INSTALL httpfs", "LOAD httpfs", "EXPLAIN ANALYZE LOAD httpfs",
    "SET enable_external_access = true", "EXPLAIN ANALYZE SET enable_external_access = true"])
def test_query_reads_the_views_and_nothing_else(tmp_path, copied, sql):
    """EXPLAIN ANALYZE runs its statement: `EXPLAIN ANALYZE COPY (...) TO '<run>/items.parquet'` passed the check on
    the statement's kind, exited 0 and overwrote a finished evaluation's file (the run turned corrupt and was redone),
    and any file could be read or written. The engine itself now refuses every file, database and extension."""
    items = next((copied / "eval").glob("tiny-en_sw-math-*")) / "items.parquet"
    before = items.read_bytes()
    (tmp_path / "secret.csv").write_text("a\nhidden-value\n")
    result = _invoke("query", copied, sql.format(items=items, tmp=tmp_path))
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "hidden-value" not in result.output and "Traceback" not in result.output
    assert items.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moved", "secret.csv"]  # nothing written
    ok = _invoke("query", copied, "SELECT count(*) AS n FROM items WHERE eval_hash IN (SELECT run_hash FROM results)")
    assert ok.exit_code == 0, ok.output
    assert ok.output.split()[-2:] == ["n", "36"]


def test_concurrent_report_builds_take_turns(copied, monkeypatch):
    """Several `study run` drivers of one study each build the report at the end: concurrent builds raced (one of
    ~28 `report` processes died with FileNotFoundError in report._clear_outputs, is_file() then unlink()). Each build
    now holds an exclusive lock on the report directory: a second build waits for the first to finish."""
    import fcntl
    import threading

    from langmix import cli_study, report

    build, inside, most, lock = report.build_report, [], [], copied / "report" / ".lock"
    second = threading.Event()

    def watched(*args, **kwargs):
        with open(lock, "a") as probe:  # held by this build: another process could not take it
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        inside.append(threading.current_thread().name)
        most.append(len(inside))
        if len(most) == 1:
            second.wait(timeout=5)  # without the lock, the other build comes in meanwhile
        else:
            second.set()
        try:
            return build(*args, **kwargs)
        finally:
            inside.remove(threading.current_thread().name)

    monkeypatch.setattr(report, "build_report", watched)
    cfg = cli_study._study_config(copied)
    paths, errors = [], []

    def run() -> None:
        try:
            paths.append(cli_study._report(cfg)[0])
        except BaseException as exc:  # noqa: BLE001 - the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=run, name=f"build{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most == [1, 1]
    assert paths == [copied / "report" / "report.html"] * 2
    assert paths[0].read_text(encoding="utf-8").endswith("</html>")


@pytest.mark.parametrize("argv", [["query", "{study}", "SELECT count(*) FROM items"], ["report", "{study}"],
                                  ["plan", "--from", "{study}", "--targets", "sw", "--budget", "100"]])
def test_no_finished_runs_in_this_grid_names_the_ones_made_under_other_settings(copied, argv):
    """`query STUDY SQL -s data.eval_items=3` (and `report`, `plan`) said only that the study had no finished
    evaluation runs, "run `langmix study run` first", although it held 3 under other settings: the line naming them
    (and how to read them) was printed only where some run of this grid had finished. A user would redo the study."""
    result = _invoke(*[a.replace("{study}", str(copied)) for a in argv], "-s", "data.eval_items=3",
                     "-s", "evaluation.max_new_tokens={math: 12}")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert any(f"3 finished evaluations in {copied / 'eval'} are not in this config's grid: " in line
               and line.endswith("pass the same overrides to include them") for line in lines), result.output
    # the command it suggests can be pasted into a shell (an override with spaces is quoted: review)
    assert lines[-1] == (f"no finished evaluation runs in this config's grid, but {copied / 'eval'} holds 3 made under "
                         "other settings (named above; each run's config.yaml holds its settings): pass the overrides "
                         f"they were made under to read them, or `langmix study run {copied} -s data.eval_items=3 "
                         "-s 'evaluation.max_new_tokens={math: 12}'` to run this grid")
    assert not (copied / "report" / "report.html").exists()
