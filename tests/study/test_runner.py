import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import yaml

from langmix.config import StudyConfig
from langmix.study.grid import expand
from langmix.study.runner import run_dir, run_state, run_study, study_dir, study_status
from tests.conftest import small_study_dict


def test_grid_expansion(small_study):
    specs = expand(small_study)
    assert [(s.mixture_name, s.task, s.seed) for s in specs] == [("base", "math", 0), ("en", "math", 0),
                                                                  ("en+sw", "math", 0)]
    assert len({s.hash for s in specs}) == 3
    two_seeds = small_study.model_copy(update={"seeds": [0, 1]})
    assert len(expand(two_seeds)) == 5  # the base model is evaluated once (greedy decoding)


def test_study_skips_finished_runs(small_study, tiny_model_path):
    first = run_study(small_study)
    assert len(first["done"]) == 3 and not first["failed"]
    paths = [run_dir(small_study, s) for s in expand(small_study)]
    stamps = {p: (p / "results.parquet").stat().st_mtime_ns for p in paths}
    second = run_study(small_study)
    assert second == {"done": [], "skipped": [s.slug for s in expand(small_study)], "failed": []}
    assert stamps == {p: (p / "results.parquet").stat().st_mtime_ns for p in paths}
    table = pq.read_table(study_dir(small_study) / "results.parquet").to_pandas()
    assert set(table["mixture"]) == {"base", "en", "en+sw"}
    assert set(table["language"]) == {"en", "es", "sw"}
    assert (table["n"] == 4).all()
    for path in paths:
        assert (path / "config.yaml").exists() and (path / "DONE").exists()
        assert sum(1 for _ in open(path / "predictions.jsonl")) == 12  # every item kept, parseable or not


def test_failed_run_is_recorded_and_others_finish(tmp_path, tiny_model_path):
    tree = small_study_dict(tmp_path / "out")
    tree["models"].append({"name": "missing", "source": "hf", "path": str(tmp_path / "no-such-model")})
    cfg = StudyConfig.model_validate(tree)
    outcome = run_study(cfg)
    assert len(outcome["done"]) == 3 and len(outcome["failed"]) == 3
    states = {(spec.model.name, state) for spec, state, _ in study_status(cfg)}
    assert states == {("tiny", "done"), ("missing", "failed")}
    failed = [p for spec, state, p in study_status(cfg) if state == "failed"][0]
    assert "no-such-model" in json.loads((failed / "status.json").read_text())["error"]


def test_interrupted_run_resumes(tmp_path, tiny_model_path):
    """Kill a real `langmix study run` process mid-training, then run the study again."""
    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            training={"max_steps": 400, "save_steps": 5, "logging_steps": 50})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    spec = expand(cfg)[0]
    ckpts = run_dir(cfg, spec) / "checkpoints"
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
    assert run_state(run_dir(cfg, spec)) == "interrupted"
    assert not (run_dir(cfg, spec) / "DONE").exists()
    outcome = run_study(cfg)
    assert outcome["done"] == [spec.slug]
    summary = json.loads((run_dir(cfg, spec) / "train_summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == 400
    assert run_state(run_dir(cfg, spec)) == "done"
