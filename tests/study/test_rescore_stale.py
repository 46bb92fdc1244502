"""Finished evaluations judged by an older scorer are re-scored from their stored outputs, without a model, before
any table is built from them; stored outputs that do not fit the eval set are an error for that evaluation."""

from __future__ import annotations

import json
import logging
import shutil

import pyarrow.parquet as pq
import pytest
import yaml

from langmix import imported_source
from langmix.config import StudyConfig
from langmix.evaluate import run
from langmix.study import runner
from langmix.study.eval_outputs import EVAL_OUTPUTS, SCORER_FILE
from langmix.study.grid import expand
from langmix.study.rescore_stale import RescoreError, RescoreFailed, rescore_eval
from langmix.study.runner import eval_dir, finished_eval_dirs, run_study, study_status, study_tables
from langmix.study.state import mark_done, read_status, run_state
from langmix.tasks import base
from langmix.tasks.math import MathTask

WARNING = "finished evaluations were judged by another scorer; re-scored from their stored outputs"


@pytest.fixture(autouse=True)
def fresh_digest():
    base.scorer_digest.cache_clear()
    yield
    base.scorer_digest.cache_clear()  # the session's shared study must not be judged stale by a patched digest


@pytest.fixture
def study(tmp_path, finished_small_study) -> StudyConfig:
    """A copy of the session's finished small study (base, en, en+sw; math; one seed), with the tiny model."""
    shutil.copytree(finished_small_study.parent / "out" / "t", tmp_path / "out" / "t")
    return StudyConfig.model_validate({**yaml.safe_load(finished_small_study.read_text()),
                                       "output_dir": str(tmp_path / "out")})


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model or generating fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("re-scoring loaded a model or generated")

    monkeypatch.setattr(runner, "load_for_evaluation", refuse)
    monkeypatch.setattr(run, "generate", refuse)


def _change_scorer(monkeypatch, score=None) -> None:
    """What editing tasks/math.py does: its source (so the digest), and, given `score`, its verdicts."""
    base.scorer_digest("math")  # its modules kept as imported
    monkeypatch.setitem(imported_source._HASHES, "langmix.tasks.math", imported_source.source_hash(b"# changed\n"))
    if score is not None:
        monkeypatch.setattr(MathTask, "score", score)
    base.scorer_digest.cache_clear()


def _evals(cfg):
    return [(ev, eval_dir(cfg, ev)) for job in expand(cfg) for ev in job.evals]


def _items(cfg):
    return study_tables(cfg).execute("SELECT * FROM items ORDER BY eval_hash, item_id").df()


def test_a_changed_scorer_rescores_finished_runs_without_generating(study, monkeypatch, no_model, caplog):
    old = base.scorer_digest("math").digest
    before = _items(study)
    assert set(before["scorer_digest"]) == {old} and not before["correct"].all()
    done = {p: (p / "DONE").stat().st_mtime_ns for kind, _, _, p in study_status(study) if kind == "train"}

    def lenient(self, ex, output, ctx):  # the new scorer: every answer right
        return {"correct": True, "correct_strict": True, "correct_flexible": True, "extracted_strict": None,
                "extracted_flexible": None, "reason": "new_scorer"}

    _change_scorer(monkeypatch, lenient)
    new = base.scorer_digest("math")
    assert new.digest != old
    with caplog.at_level(logging.WARNING, logger="langmix.study.rescore_stale"):
        outcome = run_study(study)
    assert outcome["done"] == [] and outcome["failed"] == [] and len(outcome["skipped"]) == 5  # nothing re-run
    assert f"3 {WARNING}" in caplog.text
    assert {p: (p / "DONE").stat().st_mtime_ns for p in done} == done  # nothing trained
    after = _items(study)
    assert len(after) == len(before) == 36 and after["correct"].all() and set(after["reason"]) == {"new_scorer"}
    assert set(after["scorer_digest"]) == {new.digest}
    results = study_tables(study).execute("SELECT * FROM results WHERE metric = 'accuracy_strict'").df()
    assert len(results) == 9 and (results["value"] == 1.0).all() and set(results["scorer_digest"]) == {new.digest}
    for _, path in _evals(study):
        assert run_state(path) == "done"  # DONE records the rewritten files
        assert json.loads((path / SCORER_FILE).read_text()) == new.record()
        assert {json.loads(line)["reason"] for line in (path / "predictions.jsonl").read_text().splitlines()} \
            == {"new_scorer"}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langmix.study.rescore_stale"):
        study_tables(study)
    assert WARNING not in caplog.text  # judged by the current scorer now: not again


def test_a_run_finished_before_scorers_were_recorded_is_rescored_to_the_same_verdicts(study, no_model, caplog):
    """A study from before scorer.json: its scorer is unknown, so the report path re-scores it; the current scorer
    on its stored outputs gives what the evaluation gave."""
    before = _items(study)
    predictions = {p: (p / "predictions.jsonl").read_text() for _, p in _evals(study)}
    path = _evals(study)[0][1]
    (path / SCORER_FILE).unlink()
    for name in ("items.parquet", "results.parquet"):  # as an older langmix wrote them
        pq.write_table(pq.read_table(path / name).drop_columns(["scorer_digest"]), path / name)
    mark_done(path, [n for n in EVAL_OUTPUTS if n != SCORER_FILE])
    assert run_state(path) == "done"
    with caplog.at_level(logging.WARNING, logger="langmix.study.rescore_stale"):
        after = _items(study)  # what `langmix report` reads
    assert "1 finished evaluation was judged by another scorer; re-scored from its stored outputs" in caplog.text
    assert after.equals(before)
    assert {p: (p / "predictions.jsonl").read_text() for _, p in _evals(study)} == predictions
    assert json.loads((path / SCORER_FILE).read_text())["digest"] == base.scorer_digest("math").digest


def _drop_first(lines):
    return lines[1:]


def _add_extra(lines):
    return lines + [json.dumps({**json.loads(lines[0]), "id": "zz-extra"})]


def _change_reference(lines):
    row = json.loads(lines[0])
    return [json.dumps({**row, "reference": row["reference"] + 1})] + lines[1:]


def _break_second(lines):
    return lines[:1] + [lines[1][:-5]] + lines[2:]


@pytest.mark.parametrize("tamper, error", [
    (_break_second, r"cannot read predictions.jsonl: .*predictions.jsonl:2: not valid JSON"),
    (_drop_first, r"predictions.jsonl does not hold one output per evaluation example \(1 missing: {first}\): "
                  r"the eval set changed since it was generated"),
    (_add_extra, r"predictions.jsonl does not hold one output per evaluation example \(1 not in the eval set: "
                 r"zz-extra\)"),
    (_change_reference, r"1 items differ from their examples now \(task, language, source or reference\): {first}"),
])
def test_stored_outputs_that_do_not_fit_the_eval_set_are_an_error_naming_the_eval(study, monkeypatch, no_model,
                                                                                   caplog, tamper, error):
    spec, path = _evals(study)[0]
    lines = (path / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])["id"]
    (path / "predictions.jsonl").write_text("\n".join(tamper(lines)) + "\n")
    mark_done(path, EVAL_OUTPUTS)  # finished and verified, as if written so
    _change_scorer(monkeypatch)
    message = f"eval {spec.slug}: " + error.format(first=first)
    with pytest.raises(RescoreError, match=message):
        rescore_eval(spec, path, study.name, runner.Context(study).source)
    with caplog.at_level(logging.WARNING):
        finished = finished_eval_dirs(study)
    assert finished == [p for _, p in _evals(study)[1:]]  # the others re-scored, this one in no table
    assert f"2 {WARNING}" in caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"eval {spec.slug}: ") and "marked failed" in errors[0]
    assert run_state(path) == "failed"  # the next `study run` evaluates it again
    assert "re-scoring its stored outputs failed: RescoreError: " + f"eval {spec.slug}" in read_status(path)["error"]


@pytest.mark.parametrize("char", ["\u2028", "\u0085"])
def test_an_output_holding_a_unicode_line_separator_is_rescored(study, monkeypatch, no_model, char):
    """json.dumps(ensure_ascii=False) writes U+2028 and U+0085 raw; str.splitlines() splits on them. Only "\\n"
    ends a line of predictions.jsonl."""
    spec, path = _evals(study)[0]
    lines = (path / "predictions.jsonl").read_text(encoding="utf-8").split("\n")
    row = json.loads(lines[0])
    lines[0] = json.dumps({**row, "output": f"{row['output']}{char}after"}, ensure_ascii=False)
    (path / "predictions.jsonl").write_text("\n".join(lines), encoding="utf-8")
    assert char in (path / "predictions.jsonl").read_text(encoding="utf-8")  # written raw
    mark_done(path, EVAL_OUTPUTS)
    _change_scorer(monkeypatch)
    assert finished_eval_dirs(study) == [p for _, p in _evals(study)]
    assert run_state(path) == "done"
    stored = [json.loads(line) for line in (path / "predictions.jsonl").read_text(encoding="utf-8").split("\n")
              if line.strip()]
    assert stored[0]["output"] == f"{row['output']}{char}after" and len(stored) == len(lines) - (lines[-1] == "")


def test_a_scorer_that_raises_keeps_every_finished_run_and_builds_no_table(study, monkeypatch, no_model):
    """A scorer bug used to mark every finished eval of the task failed and delete its DONE (regeneration needed);
    now the runs stay finished, untouched, and the table is refused with one error naming the eval."""
    evals = _evals(study)
    before = {p: {n: (p / n).read_bytes() for n in [*EVAL_OUTPUTS, "DONE"]} for _, p in evals}
    real_score = MathTask.score

    def buggy(self, ex, output, ctx):
        raise ZeroDivisionError("division by zero")

    _change_scorer(monkeypatch, buggy)
    with pytest.raises(RescoreFailed, match=rf"^eval {evals[0][0].slug} was judged by another scorer, and "
                                            r"re-scoring its stored outputs failed: RuntimeError: the math scorer "
                                            r"failed on all 12 items \(first: ZeroDivisionError: division by zero\); "
                                            r"fix the task module or its references; no table is built") as err:
        study_tables(study)
    assert "\n" not in str(err.value)
    for _, p in evals:
        assert run_state(p) == "done"
        assert {n: (p / n).read_bytes() for n in [*EVAL_OUTPUTS, "DONE"]} == before[p]
    assert "ZeroDivisionError" in read_status(evals[0][1])["traceback"]
    monkeypatch.setattr(MathTask, "score", real_score)
    assert finished_eval_dirs(study) == [p for _, p in evals]  # fixed: all re-scored, none regenerated


class _Crash(BaseException):
    """The process dies here (SIGKILL, power): nothing after it runs, no `except Exception` sees it."""


def _lenient(self, ex, output, ctx):
    return {"correct": True, "correct_strict": True, "correct_flexible": True, "extracted_strict": None,
            "extracted_flexible": None, "reason": "new_scorer"}


@pytest.mark.parametrize("where", ["writing", "swapping"])
def test_a_rescoring_interrupted_anywhere_never_needs_the_model_again(study, monkeypatch, no_model, where):
    """Re-scoring rewrote a finished run's files in place: a crash between two of them left it corrupt (its outputs
    intact, but only generating again made it finished). Now the next look completes (or rolls back) the rewrite."""
    from langmix.study import eval_outputs, state

    evals = _evals(study)
    _change_scorer(monkeypatch, _lenient)
    if where == "writing":  # new predictions and items written, then the crash
        def crash(*args, **kwargs):
            raise _Crash()
        monkeypatch.setattr(eval_outputs, "write_rows", crash)
    else:  # the journal written and one file moved in, then the crash
        moves = []

        def crash_after_one(src, dst):
            if moves:
                raise _Crash()
            moves.append(dst)
            state.os.replace(src, dst)
        monkeypatch.setattr(state, "_move", crash_after_one)
    with pytest.raises(_Crash):
        finished_eval_dirs(study)
    monkeypatch.undo()  # the process restarts with the new scorer
    _change_scorer(monkeypatch, _lenient)
    assert [run_state(p) for _, p in evals] == ["done"] * 3  # never corrupt: the next look settles it
    assert finished_eval_dirs(study) == [p for _, p in evals]
    items = _items(study)
    assert len(items) == 36 and items["correct"].all() and set(items["scorer_digest"]) == \
        {base.scorer_digest("math").digest}
    for _, p in evals:
        assert not (p / "SWAP.json").exists() and not (p / ".staging").exists()
        assert json.loads((p / SCORER_FILE).read_text())["digest"] == base.scorer_digest("math").digest


def test_rescoring_names_the_runs_what_changed_and_keeps_a_trail(study, monkeypatch, no_model, caplog):
    from langmix.study import rescore_stale

    evals = _evals(study)
    old = base.scorer_digest("math")
    before = study_tables(study).execute("SELECT language, value FROM results WHERE metric = 'accuracy_strict' "
                                         f"AND run_hash = '{evals[0][0].key}'").df()
    _change_scorer(monkeypatch, _lenient)
    new = base.scorer_digest("math")
    module, = [p.split(" ")[1] for p in old.parts if p.startswith("langmix.tasks.math ")]
    changed, = [p.split(" ")[1] for p in new.parts if p.startswith("langmix.tasks.math ")]
    monkeypatch.setattr(rescore_stale, "PROGRESS_EVERY", 1)
    with caplog.at_level(logging.INFO, logger="langmix.study.rescore_stale"):
        finished_eval_dirs(study)
    slugs = ", ".join(spec.slug for spec, _ in evals)
    assert (f"3 finished evaluations were judged by another scorer; re-scored from their stored outputs ({slugs}); "
            f"math scorer {old.digest} -> {new.digest}: langmix.tasks.math {module} -> {changed} "
            "(each run's trail: rescored.jsonl)") in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"re-scoring finished evaluations judged by another scorer: {i} of 3" for i in (1, 2)]
    trail = [json.loads(line) for line in (evals[0][1] / "rescored.jsonl").read_text().splitlines()]
    assert len(trail) == 1 and trail[0]["old_scorer"] == old.record() and trail[0]["new_scorer"] == new.record()
    assert trail[0]["headline_metric"] == "accuracy_strict"
    assert trail[0]["old"] == dict(zip(before["language"], before["value"])) and set(trail[0]["old"]) == {
        "en", "sw", "es"} and trail[0]["new"] == {"en": 1.0, "sw": 1.0, "es": 1.0}
    assert trail[0]["old"] != trail[0]["new"]


@pytest.mark.parametrize("recorded", [True, False])
def test_rescoring_keeps_the_count_of_items_past_the_models_context(study, monkeypatch, no_model, recorded):
    """Whether an item's prompt and answer cap fit the model's context is known only when it was generated: a
    re-scoring carries the stored flags into its predictions and the `context_exceeded` rows; an older run's
    predictions, without them, get no such row rather than a count of 0."""
    path = _evals(study)[0][1]
    rows = [json.loads(line) for line in (path / "predictions.jsonl").read_text().splitlines()]
    assert all(row["context_exceeded"] is False for row in rows)  # the tiny model's 256 positions: all fit
    for k, row in enumerate(rows):
        if recorded:
            row["context_exceeded"] = k == 0
        else:
            del row["context_exceeded"]
    (path / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    mark_done(path, EVAL_OUTPUTS)
    _change_scorer(monkeypatch)
    study_tables(study)  # re-scores, as `langmix report` does
    assert json.loads((path / SCORER_FILE).read_text())["digest"] == base.scorer_digest("math").digest
    stored = [json.loads(line) for line in (path / "predictions.jsonl").read_text().splitlines()]
    results = pq.read_table(path / "results.parquet").to_pylist()
    counts = {r["language"]: (r["value"], r["n"]) for r in results if r["metric"] == "context_exceeded"}
    if recorded:
        assert [row["context_exceeded"] for row in stored] == [k == 0 for k in range(len(rows))]
        n = {lang: sum(1 for row in rows if row["language"] == lang) for lang in {row["language"] for row in rows}}
        assert counts == {lang: ((1 if lang == rows[0]["language"] else 0) / m, m) for lang, m in n.items()}
    else:
        assert all("context_exceeded" not in row for row in stored) and counts == {}
