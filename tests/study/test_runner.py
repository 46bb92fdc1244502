import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from langmix.config import StudyConfig
from langmix.study.grid import expand
from langmix.study.runner import eval_dir, run_study, study_dir, study_status, study_tables, train_dir
from langmix.study.state import run_state
from tests.conftest import small_study_dict


def _mtimes(cfg):
    return {p: (p / "DONE").stat().st_mtime_ns for _, _, _, p in study_status(cfg)}


def test_grid_expansion(small_study):
    jobs = expand(small_study)
    assert [(j.evals[0].mixture_name, j.evals[0].task, j.evals[0].seed) for j in jobs] == [
        ("base", "math", 0), ("en", "math", 0), ("en+sw", "math", 0)]
    assert jobs[0].train is None and all(j.train is not None for j in jobs[1:])
    assert len({e.key for j in jobs for e in j.evals}) == 3
    two_seeds = small_study.model_copy(update={"seeds": [0, 1]})
    assert len(expand(two_seeds)) == 5  # the base model is evaluated once (greedy decoding)


def test_train_and_eval_keys_are_separate(small_study):
    base = expand(small_study)[1]
    changed_eval = small_study.model_copy(update={"evaluation": small_study.evaluation.model_copy(
        update={"batch_size": 3})})
    more_langs = StudyConfig.model_validate({**small_study.model_dump(mode="json"), "languages": ["en", "es", "sw",
                                                                                                  "de"]})
    ckpt_only = small_study.model_copy(update={"training": small_study.training.model_copy(
        update={"save_steps": 9, "activation_checkpointing": True})})
    lr = small_study.model_copy(update={"training": small_study.training.model_copy(update={"learning_rate": 1e-4})})
    joined = small_study.model_copy(update={"evaluation": small_study.evaluation.model_copy(
        update={"continuous_batching": True})})
    assert expand(joined)[1].evals[0].key == base.evals[0].key  # same greedy outputs: nothing to re-evaluate
    for cfg in (changed_eval, more_langs, ckpt_only, joined):
        job = expand(cfg)[1]
        assert job.train.key == base.train.key
    assert expand(changed_eval)[1].evals[0].key != base.evals[0].key
    assert expand(more_langs)[1].evals[0].key != base.evals[0].key
    assert expand(lr)[1].train.key != base.train.key


def test_study_skips_finished_runs_and_reevaluates_only(small_study, tiny_model_path):
    first = run_study(small_study)
    assert len(first["done"]) == 5 and not first["failed"]
    stamps = _mtimes(small_study)
    second = run_study(small_study)
    assert second["done"] == [] and len(second["skipped"]) == 5
    assert stamps == _mtimes(small_study)
    items = study_tables(small_study).execute("SELECT * FROM items").df()
    assert set(items["mixture"]) == {"base", "en", "en+sw"}
    assert len(items) == 3 * 3 * 4  # runs x languages x items: one row per (eval run, item, language)
    results = study_tables(small_study).execute(
        "SELECT mixture, language, metric, count(*) AS k FROM results GROUP BY ALL").df()
    assert (results["k"] == 1).all()
    for _, _, _, path in study_status(small_study):
        assert (path / "config.yaml").exists() and (path / "DONE").exists()
    # changing only evaluation settings re-evaluates every model and trains none
    changed = small_study.model_copy(update={"evaluation": small_study.evaluation.model_copy(
        update={"max_new_tokens": {"math": 6}})})
    third = run_study(changed)
    assert sorted(n.split("/")[0] for n in third["done"]) == ["eval"] * 3
    assert all(n.startswith("train/") for n in third["skipped"])
    for job in expand(changed):
        if job.train is not None:
            assert (train_dir(changed, job.train) / "DONE").stat().st_mtime_ns == stamps[train_dir(changed,
                                                                                                  job.train)]


def test_corrupt_results_are_detected_and_redone(small_study, tiny_model_path):
    run_study(small_study)
    job = expand(small_study)[1]
    run = eval_dir(small_study, job.evals[0])
    data = (run / "items.parquet").read_bytes()
    (run / "items.parquet").write_bytes(data[: len(data) // 2])
    assert run_state(run) == "corrupt"
    tables = study_tables(small_study).execute("SELECT DISTINCT mixture FROM items").df()
    assert "en" not in set(tables["mixture"])  # never read from a corrupt run
    outcome = run_study(small_study)
    assert outcome["done"] == [f"eval/{job.evals[0].slug}"]
    assert run_state(run) == "done"


def test_failed_run_is_recorded_and_others_finish(tmp_path, tiny_model_path):
    tree = small_study_dict(tmp_path / "out")
    tree["models"].append({"name": "missing", "source": "hf", "path": str(tmp_path / "no-such-model")})
    cfg = StudyConfig.model_validate(tree)
    outcome = run_study(cfg)
    assert len(outcome["done"]) == 5 and len(outcome["failed"]) == 3 and len(outcome["blocked"]) == 2
    states = {(spec.model.name, state) for _, spec, state, _ in study_status(cfg)}
    assert states == {("tiny", "done"), ("missing", "failed"), ("missing", "blocked")}  # was "pending"
    failed = [p for _, _, state, p in study_status(cfg) if state == "failed"][0]
    assert "no-such-model" in json.loads((failed / "status.json").read_text())["error"]
    from langmix.cli_study import _report  # the report names what it leaves out (it dropped them silently)

    md = (_report(cfg)[0].parent / "report.md").read_text()
    assert "Not in this report: 3 of 6 planned evaluations (2 blocked, 1 failed): missing/base/math/s0" in md, md[:600]


def test_changed_data_content_retrains(tmp_path, tiny_model_path):
    from langmix.data.synth import make_items, to_example

    data = tmp_path / "train.jsonl"
    evalf = tmp_path / "eval.jsonl"
    train_items = make_items("math", "train", 30, 0)
    data.write_text("".join(to_example(i, lang).model_dump_json() + "\n" for i in train_items for lang in ("en", "sw")))
    evalf.write_text("".join(to_example(i, "en").model_dump_json() + "\n" for i in make_items("math", "eval", 3, 0)))
    tree = small_study_dict(tmp_path / "out", include_base=False, languages=["en", "sw"],
                            data={"source": "files", "math": {"train": {"format": "examples", "path": str(data)},
                                                              "eval": {"format": "examples", "path": str(evalf)}}})
    cfg = StudyConfig.model_validate(tree)
    key = expand(cfg)[0].train.key
    data.write_text("".join(to_example(i, lang).model_dump_json() + "\n" for i in train_items[1:]
                            for lang in ("en", "sw")))
    assert expand(StudyConfig.model_validate(tree))[0].train.key != key  # same path, new content, new run


def test_two_drivers_train_each_run_once(tmp_path, tiny_model_path):
    tree = small_study_dict(tmp_path / "out", include_base=False,
                            training={"max_steps": 20, "save_steps": 10, "logging_steps": 5})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    procs = [subprocess.Popen([sys.executable, "-m", "langmix.cli", "study", "run", str(config), "--no-report"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
             for _ in range(2)]
    for p in procs:
        p.wait(timeout=300)
    cfg = StudyConfig.model_validate(tree)
    for job in expand(cfg):
        summary = json.loads((train_dir(cfg, job.train) / "train_summary.json").read_text())
        assert summary["resumed_from"] is None and summary["global_step"] == 20
        assert run_state(eval_dir(cfg, job.evals[0])) == "done"
    rows = study_tables(cfg).execute("SELECT eval_hash, language, count(*) AS k FROM items GROUP BY ALL").df()
    assert set(rows["k"]) == {4}


def test_interrupted_run_resumes(tmp_path, tiny_model_path):
    """Kill a real `langmix study run` process mid-training (after its first checkpoint), then run it again."""
    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            training={"max_steps": 100, "save_steps": 5, "logging_steps": 50})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    job = expand(cfg)[0]
    run = train_dir(cfg, job.train)
    ckpts = run / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "langmix.cli", "study", "run", str(config), "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 240
    try:
        while not list(ckpts.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the killed driver's claim is left behind with a fresh heartbeat; its process is gone from this host, so the
    # run is free at once (not after STALE_S)
    from langmix.study import state
    claim = state.read_claim(run)
    assert claim is None or time.time() - claim["heartbeat"] < state.STALE_S
    assert not state.claim_is_live(claim)
    assert run_state(run) == "interrupted"
    assert not (run / "DONE").exists()
    outcome = run_study(cfg)
    assert f"train/{job.train.slug}" in outcome["done"]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == 100
    assert run_state(run) == "done"
    assert study_dir(cfg).exists()


def test_a_claim_is_live_while_its_owner_process_is(tmp_path):
    """On the owner's host and in its PID namespace, a claim whose process has exited (or whose pid now belongs to
    another process) is not live, however fresh its heartbeat; a live process's claim is; a claim from another
    host or PID namespace (a container on the host network) is judged by its heartbeat alone."""
    import socket

    from langmix.study import state

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = {"host": socket.gethostname(), "pid": child.pid, "process": state._process_identity(child.pid)}
    assert owner["process"] is not None
    fresh = {"owner": owner, "heartbeat": time.time()}
    assert state.claim_is_live(fresh)
    child.kill()
    child.wait()
    assert not state.claim_is_live(fresh)
    me = state._owner()
    assert state.claim_is_live({"owner": me, "heartbeat": time.time()})
    assert not state.claim_is_live({"owner": me, "heartbeat": time.time() - state.STALE_S})
    namespace, started = me["process"].split()
    reused = dict(me, process=f"{namespace} {int(started) - 1}")  # this pid, another process's start time
    assert not state.claim_is_live({"owner": reused, "heartbeat": time.time()})
    other_ns = dict(owner, process="pid:[1] 1")  # the dead child's pid, seen from another namespace: unknown here
    assert state.claim_is_live({"owner": other_ns, "heartbeat": time.time()})
    assert state.claim_is_live({"owner": dict(owner, host="elsewhere"), "heartbeat": time.time()})
    assert state.claim_is_live({"owner": {"host": owner["host"], "pid": child.pid}, "heartbeat": time.time()})


def test_a_run_whose_references_cannot_be_scored_is_not_trained(tmp_path):
    import pytest

    from langmix.data.sources import open_source
    from langmix.study.runner import Hooks, execute_train
    from langmix.tasks import UnscorableReferenceError

    cfg = StudyConfig.model_validate(small_study_dict(tmp_path / "out", include_base=False))
    job = next(j for j in expand(cfg) if j.train is not None and j.train.task == "math")
    source = open_source(cfg.data)
    evaluation = [ex.model_copy(update={"reference": {}}) if k == 3 else ex
                  for k, ex in enumerate(source.eval_examples("math", cfg.languages))]
    path = train_dir(cfg, job.train)
    with pytest.raises(UnscorableReferenceError, match="1 of .* math evaluation examples cannot be scored"):
        execute_train(job.train, path, source, "unused: never loaded", evaluation, Hooks())
    assert not (path / "mixture").exists() and not (path / "checkpoints").exists()


def test_a_re_evaluation_does_not_rewrite_the_study_definition(tmp_path):
    """`eval --study -s ...` evaluates under the overrides but leaves `study.yaml` (what `plan --from`, `query` and
    `report` on the study directory read) as the last `study run` wrote it."""
    from langmix.study.runner import _prepare, evaluate_study

    tree = small_study_dict(tmp_path / "out", include_base=False)
    cfg = StudyConfig.model_validate(tree)
    _prepare(cfg)  # what `study run` records
    written = (study_dir(cfg) / "study.yaml").read_text()
    changed = StudyConfig.model_validate({**tree, "training": {**tree.get("training", {}), "learning_rate": 0.5}})
    outcome = evaluate_study(changed)
    assert outcome["untrained"] and not outcome["done"]  # other train keys: nothing trained under them
    assert (study_dir(cfg) / "study.yaml").read_text() == written


def test_a_local_worker_exits_when_its_driver_is_killed(tmp_path):
    """A process running `workers.exit_with_parent` (what each `--workers N` worker runs first) ends once its
    parent is gone, instead of outliving a driver killed with SIGKILL."""
    marker = tmp_path / "worker.pid"
    worker_py = tmp_path / "worker.py"
    worker_py.write_text("import os, sys, time\n"
                         "from langmix.study.workers import exit_with_parent\n"
                         "exit_with_parent(os.getppid(), 0.05)\n"
                         "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
                         "time.sleep(60)\n")
    script = (f"import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, {str(worker_py)!r}, {str(marker)!r}])\n"
              f"time.sleep(120)\n")
    driver = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()):
        assert time.time() < deadline, "the worker did not start"
        time.sleep(0.05)
    worker = int(marker.read_text())
    driver.kill()
    driver.wait()
    deadline = time.time() + 20
    while True:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        # a zombie (reparented, exited, not yet reaped) counts as gone
        with open(f"/proc/{worker}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        assert time.time() < deadline, "the worker outlived its driver"
        time.sleep(0.05)


def test_a_lost_claim_stops_the_work_before_it_writes(tmp_path, monkeypatch):
    """A SLURM job suspended past the stale time lost its claim to a local driver, then resumed and kept training:
    both wrote the run's checkpoints, final weights and DONE. Now the owner's `ensure` raises once the claim file
    names another owner, at once when the heartbeat saw it, and when beats are overdue by reading the file."""
    import pytest

    from langmix.study import state

    monkeypatch.setattr(state, "HEARTBEAT_S", 0.05)
    claim = state.try_claim(tmp_path / "run")
    with claim:
        state.ensure_claim()  # held: nothing happens
        claim.path.write_text(json.dumps({"owner": {"token": "someone-else"}, "heartbeat": time.time()}))
        deadline = time.time() + 10
        while not claim.lost.is_set():  # the heartbeat thread notices
            assert time.time() < deadline
            time.sleep(0.01)
        with pytest.raises(state.ClaimLost):
            state.ensure_claim()
    assert json.loads((tmp_path / "run" / "claim.json").read_text())["owner"]["token"] == "someone-else"

    suspended = state.try_claim(tmp_path / "run2")  # a process whose heartbeat thread has not run yet
    suspended._stop.set()
    suspended.last_beat -= 10  # beats overdue: ensure reads the file itself
    suspended.path.write_text(json.dumps({"owner": {"token": "driver-2"}, "heartbeat": time.time()}))
    with pytest.raises(state.ClaimLost):
        suspended.ensure()


def test_a_training_run_whose_claim_is_taken_over_writes_nothing_more(tmp_path, tiny_model_path, monkeypatch):
    """End to end: the claim of a training run is taken over after its second step; the run stops before the next
    checkpoint, leaves the new owner's claim and status alone, and writes no final weights and no DONE."""
    from langmix.study import runner, state

    tree = small_study_dict(tmp_path / "out", include_base=False)
    tree["training"] = {**tree.get("training", {}), "max_steps": 6, "save_steps": 1}
    cfg = StudyConfig.model_validate(tree)
    job = next(j for j in expand(cfg) if j.train is not None)
    path = train_dir(cfg, job.train)
    steps = []

    def taken_over_after_two_steps():
        steps.append(1)
        if len(steps) == 2:
            (path / "claim.json").write_text(json.dumps({"owner": {"token": "driver-2"}, "heartbeat": time.time()}))
            (path / "status.json").write_text(json.dumps({"state": "running", "by": "driver-2"}))
            state._HELD[-1].last_beat -= 100  # overdue: the next check reads the file
        state.ensure_claim()

    monkeypatch.setattr(runner, "ensure_claim", taken_over_after_two_steps)
    outcome = runner.run_job(cfg, job)
    assert outcome[f"train/{job.train.slug}"] == "busy"
    assert sorted(p.name for p in (path / "checkpoints").iterdir()) == ["checkpoint-1"]  # none after the take-over
    assert not (path / "final").exists() and not (path / "DONE").exists()
    assert json.loads((path / "status.json").read_text()) == {"state": "running", "by": "driver-2"}
    assert json.loads((path / "claim.json").read_text())["owner"]["token"] == "driver-2"


def test_a_multi_gpu_launch_holds_the_claim_and_stops_when_it_is_lost(tmp_path, monkeypatch):
    """`accelerate launch` ran outside any claim: a duplicate job could train the same run at once. The launching
    job now holds the claim, skips a run another process holds, and stops the launch when the claim is taken."""
    import pytest

    from langmix.study import slurm_job, state

    monkeypatch.setattr(state, "HEARTBEAT_S", 0.05)
    cfg = StudyConfig.model_validate(small_study_dict(tmp_path / "out", include_base=False))
    job = next(j for j in expand(cfg) if j.train is not None)
    path = train_dir(cfg, job.train)
    started = tmp_path / "started"
    monkeypatch.setattr(slurm_job, "accelerate_command", lambda *a: [
        sys.executable, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"])
    other = state.try_claim(path)  # another process holds the run: nothing is launched
    with other:
        slurm_job._train_distributed(cfg, job)
    assert not started.exists()

    def take_over():
        deadline = time.time() + 30
        while not started.exists():
            assert time.time() < deadline
            time.sleep(0.02)
        (path / "claim.json").write_text(json.dumps({"owner": {"token": "driver-2"}, "heartbeat": time.time()}))

    import threading

    thief = threading.Thread(target=take_over)
    thief.start()
    begun = time.time()
    with pytest.raises(state.ClaimLost):
        slurm_job._train_distributed(cfg, job)
    thief.join()
    assert time.time() - begun < 30  # the 60 s launch was stopped, not waited for


class _Preempted(BaseException):
    """Stands for a preemption: not an Exception, so the run is left interrupted, not failed."""


def _recording_hooks(calls: list, stop_at_step: int | None = None):
    """Hooks that record every call; with `stop_at_step`, preempt the run at that training step."""
    from langmix.study.runner import Hooks

    def stage(name, total):
        calls.append(("stage", name, total))

    def advance(k):
        calls.append(("advance", k))
        if stop_at_step is not None and _train_steps(calls) == stop_at_step:
            raise _Preempted

    return Hooks(stage=stage, advance=advance, note=lambda text: calls.append(("note", text)))


def _train_steps(calls: list) -> int:
    """Steps advanced since the last training stage started."""
    last = max(i for i, c in enumerate(calls) if c[0] == "stage" and c[1].startswith("train "))
    return sum(c[1] for c in calls[last:] if c[0] == "advance")


def test_training_progress_reaches_the_study_hooks_and_a_resumed_run_starts_at_its_checkpoint(tmp_path,
                                                                                               tiny_model_path):
    """A study's training stage reports its steps (of the trainer's max_steps) and its logged losses through the
    hooks, as evaluation reports its items; a resumed run starts its count at its checkpoint's step."""
    import pytest

    from langmix.study.runner import run_job

    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            training={"max_steps": 3, "save_steps": 2, "logging_steps": 1})
    cfg = StudyConfig.model_validate(tree)
    job = expand(cfg)[0]
    name = f"train {job.train.slug}"
    first: list = []
    with pytest.raises(_Preempted):
        run_job(cfg, job, hooks=_recording_hooks(first, stop_at_step=3))
    assert run_state(train_dir(cfg, job.train)) == "interrupted"
    assert first[:2] == [("stage", name, 0), ("stage", name, 3)]  # preparing, then the trainer's max_steps
    assert [c for c in first if c[0] == "advance"] == [("advance", 1)] * 3
    assert [c[0] for c in first[2:]] == ["advance", "note"] * 2 + ["advance"]  # each step's loss after its step
    assert all(c[1].startswith("loss ") for c in first if c[0] == "note")

    resumed: list = []
    outcome = run_job(cfg, job, hooks=_recording_hooks(resumed))
    assert outcome[f"train/{job.train.slug}"] == "done"
    assert resumed[:4] == [("stage", name, 0), ("stage", name, 3), ("advance", 2), ("advance", 1)]
    evaluating = resumed.index(next(c for c in resumed if c[0] == "stage" and c[1].startswith("evaluate ")))
    assert sum(c[1] for c in resumed[:evaluating] if c[0] == "advance") == 3
    total = resumed[evaluating][2]
    assert total > 0 and sum(c[1] for c in resumed[evaluating:] if c[0] == "advance") == total


@pytest.mark.parametrize("group", [False, True], ids=["driver", "group"])
def test_sigint_to_the_driver_alone_stops_its_workers(tmp_path, tiny_model_path, group):
    """With --workers 2, SIGINT sent to the driver only (not its process group, as Ctrl-C in a terminal does) left
    the workers training: the driver waited for them to finish their runs, then exited without a word. Now it
    stops them at once: their runs are left interrupted (resumable), and it exits 130 saying so. Ctrl-C (the
    whole group) does the same."""
    from langmix.study import state

    tree = small_study_dict(tmp_path / "out", include_base=False,
                            training={"max_steps": 100000, "save_steps": 5, "logging_steps": 100000})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    runs = [train_dir(cfg, job.train) for job in expand(cfg)]
    assert len(runs) == 2
    driver = subprocess.Popen([sys.executable, "-m", "langmix.cli", "study", "run", str(config), "--no-report",
                               "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=os.environ.copy(), start_new_session=True)
    try:
        deadline = time.time() + 300
        while not all(list((run / "checkpoints").glob("checkpoint-*/trainer_state.json")) for run in runs):
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the workers did not both reach a checkpoint"
            time.sleep(0.1)
        workers = {state.read_claim(run)["owner"]["pid"] for run in runs}
        assert len(workers) == 2 and driver.pid not in workers
        if group:
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(signal.SIGINT)  # the driver's pid only
        try:
            _, err = driver.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the driver did not stop within 60 s of SIGINT") from None
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    err = " ".join(err.decode().split())
    assert driver.returncode == 130, err[-2000:]
    assert "interrupted" in err and "langmix study run" in err, err[-2000:]
    for pid in workers:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped) counts as gone
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z", f"worker {pid} outlived the driver"
    assert [run_state(run) for run in runs] == ["interrupted", "interrupted"]
    assert all(state.read_claim(run) is None for run in runs)  # released, not left behind by a killed worker
