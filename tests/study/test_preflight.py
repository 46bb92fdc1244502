"""`study run --dry-run` (local and SLURM) makes the checks a real run makes before it trains anything: it listed
every run as to do and exited 0 with a malformed training file, a budget the pool cannot give, or a training file
holding an evaluation question, each of which `mix` (and the real run) refuses. Nothing is loaded or written."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.data.synth import make_items, to_example

LANGUAGES = ["en", "es", "sw"]


def _study(tmp_path, leak: bool = False, malformed: bool = False, **fields):
    """A files-source study over 20 synthetic training items and 3 evaluation items in en, es and sw (two
    trainings: English-only and en+sw); `leak` adds the first evaluation item to the training file under another
    source id, `malformed` a line that is not JSON."""
    train_items, eval_items = make_items("math", "train", 20, 0), make_items("math", "eval", 3, 0)
    rows = [to_example(item, lang) for item in train_items for lang in LANGUAGES]
    if leak:
        rows += [to_example(eval_items[0], lang).model_copy(update={"source_id": "leak", "id": f"leak-{lang}"})
                 for lang in LANGUAGES]
    text = "".join(ex.model_dump_json() + "\n" for ex in rows)
    (tmp_path / "train.jsonl").write_text(text + ('{"id": oops}\n' if malformed else ""))
    (tmp_path / "eval.jsonl").write_text("".join(to_example(item, lang).model_dump_json() + "\n"
                                                 for item in eval_items for lang in LANGUAGES))
    tree = {"name": "t", "output_dir": str(tmp_path / "out"), "languages": LANGUAGES, "tasks": ["math"],
            "seeds": [0], "models": [{"name": "tiny", "source": "tiny"}],
            "mixtures": [{"design": "english_only"}, {"design": "en_plus_one", "languages": ["sw"]}],
            "budget": {"mode": "fixed_total", "total": 20 + leak},
            "data": {"source": "files", "math": {"train": {"format": "examples", "path": str(tmp_path / "train.jsonl")},
                                                 "eval": {"format": "examples", "path": str(tmp_path / "eval.jsonl")}}},
            **fields}
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    return config


@pytest.fixture
def no_model(monkeypatch):
    from langmix import models

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run built or loaded a model")

    monkeypatch.setattr(models, "ensure_tiny", refuse)
    monkeypatch.setattr(models, "resolve_model_path", refuse)


@pytest.mark.parametrize("launcher", ["local", "slurm"])
@pytest.mark.parametrize("study, message", [
    (dict(malformed=True), "train.jsonl:61: not valid JSON"),
    (dict(budget={"total": 1000}), "mixture 'en': 1000 examples with distinct sources requested but the pool holds "
                                   "20; enlarge the pool or set budget.allow_shared_sources"),
    (dict(leak=True), "2 of the 2 training mixtures to build or evaluate would be refused, holding evaluation "
                      "items: train/tiny-en-math-s0-"),
])
def test_a_dry_run_refuses_what_the_run_would_refuse(tmp_path, no_model, launcher, study, message):
    config = _study(tmp_path, **study)
    result = CliRunner().invoke(app, ["study", "run", str(config), "--dry-run", "--launcher", launcher])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")
    assert "runs to do" not in result.output and "job array" not in result.output
    assert not (tmp_path / "out").exists()  # no study directory, no study.yaml


def test_the_leak_is_named_with_its_items(tmp_path, no_model):
    result = CliRunner().invoke(app, ["study", "run", str(_study(tmp_path, leak=True)), "--dry-run"])
    eval_id = to_example(make_items("math", "eval", 3, 0)[0], "en").id
    assert result.exit_code == 2
    assert f"leak-en / {eval_id}" in result.output.replace("\n", "")
    assert "also refused: train/tiny-en_sw-math-s0-" in result.output.replace("\n", "")


@pytest.mark.parametrize("launcher, shown", [("local", "5 of 5 runs to do"), ("slurm", "job array of 3")])
def test_a_sound_study_passes_and_nothing_is_written(tmp_path, no_model, launcher, shown):
    result = CliRunner().invoke(app, ["study", "run", str(_study(tmp_path)), "--dry-run", "--launcher", launcher])
    assert result.exit_code == 0, result.output
    assert shown in result.output
    assert not (tmp_path / "out").exists()


def test_a_finished_training_is_not_checked_again(tmp_path, no_model, monkeypatch):
    """Only trainings still to do are sampled and checked (a finished one was checked when it was built, and its
    evaluation checks it again against the eval set of the day)."""
    from langmix.config import StudyConfig
    from langmix.study import preflight as module
    from langmix.study.grid import expand

    config = _study(tmp_path)
    cfg = StudyConfig.model_validate(yaml.safe_load(config.read_text()))
    done = next(job.train.slug for job in expand(cfg) if job.train is not None)
    checked = []
    monkeypatch.setattr(module, "check_mixture", lambda source, spec, *args: checked.append(spec.name))
    real = module.study_status

    def one_done(cfg, jobs):
        return [(kind, spec, "done" if spec.slug == done else state, path)
                for kind, spec, state, path in real(cfg, jobs)]

    monkeypatch.setattr(module, "study_status", one_done)
    jobs, runs = module.preflight(cfg)
    assert len(jobs) == 3 and len(runs) == 5  # the base model's evaluation, two trainings and theirs
    assert checked == ["en+sw"] and done.startswith("tiny-en-math")


def test_a_finished_training_is_checked_against_the_eval_set_of_the_day(tmp_path, no_model, monkeypatch):
    """A finished training whose evaluation is still to do passed the dry run, while the real run's evaluation
    refused it (`execute_eval` checks the trained mixture again against the eval set, which had gained one of its
    questions): the dry run checks it as the evaluation will (new-features probe)."""
    from langmix.config import StudyConfig
    from langmix.data.sources import open_source
    from langmix.mixtures import build_mixture
    from langmix.study import preflight as module
    from langmix.study.grid import expand
    from langmix.study.runner import train_dir

    config = _study(tmp_path)
    cfg = StudyConfig.model_validate(yaml.safe_load(config.read_text()))
    spec = next(job.train for job in expand(cfg) if job.train is not None)
    source = open_source(cfg.data)
    built, _ = build_mixture(source, spec.mixture(), spec.task, spec.budget, spec.seed,
                             source.eval_examples("math", LANGUAGES), train_dir(cfg, spec) / "mixture")
    real = module.study_status
    monkeypatch.setattr(module, "study_status", lambda cfg, jobs: [
        (kind, s, "done" if s.slug == spec.slug else state, path) for kind, s, state, path in real(cfg, jobs)])
    module.preflight(cfg)  # the eval set it was built against: passes
    trained = built[0].model_copy(update={"id": "new-eval-en", "source_id": "new-eval",
                                          "messages": built[0].messages[:-1]})
    with open(tmp_path / "eval.jsonl", "a") as f:  # the eval set gains a question the finished training holds
        f.write(trained.model_dump_json() + "\n")
    result = CliRunner().invoke(app, ["study", "run", str(config), "--dry-run"])
    assert result.exit_code == 2, result.output
    said = result.output.replace("\n", "")
    assert said.startswith("2 of the 2 training mixtures to build or evaluate would be refused")  # en+sw: to do
    assert said.endswith(f"also refused: train/{spec.slug}") and "/ new-eval-en (same question)" in said
