"""Bad inputs a new user gives (found by an adversarial probe of the README's commands): each ends with exit 2 and
one line naming the problem, before any model is loaded or trained; `--dry-run` runs nothing."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from tests.conftest import small_study_dict

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(small_study_dict(tmp_path / "out")))
    return path


@pytest.mark.parametrize("argv, message", [
    (["query", "{config}", "  "], "the SQL query is empty"),
    (["query", "{config}", "SELECT count(*) FROM items"], "no finished evaluation runs in"),  # was 0, exit 0
    (["plan", "--from", "{config}", "--targets", ",", "--budget", "10"], "--targets names no language"),
    (["plan", "--from", "{config}", "--targets", "sw", "--budget", "10", "--max-languages", "1"], "max-languages"),
    (["data", "synth", "--out", "{tmp}"], "cannot write"),
    (["data", "synth", "--n", "0"], "--n"),
    (["data", "synth", "--split", "foo"], "--split must be train or eval"),
    (["data", "synth", "--languages", ","], "--languages names no language"),
    (["study", "run", "{config}", "--workers", "0"], "--workers"),
    (["study", "status", "{config}", "-s", "tasks=[]"], "tasks"),
    (["study", "status", "{config}", "-s", "models=[]"], "models"),
    (["study", "status", "{config}", "-s", "name=../x"], "name"),
    (["study", "status", "{config}", "-s", "languages=[xx]"], "with overrides ['languages=[xx]']"),
    (["study", "status", "{tmp}/empty.yaml"], "is empty"),
    (["eval", "{config}", "--study", "--out", "{tmp}/e"], "--out and --model do not apply"),
    (["eval", "{config}", "--task", "foo", "--out", "{tmp}/e"], "unknown task 'foo'"),
    (["eval", "{config}", "--model", "{tmp}", "--out", "{tmp}/e"], "is not a trained model directory"),
    (["train", "{config}", "--mixture", "{tmp}/m.jsonl", "--out", "{tmp}/r", "--seed", "-1"], "--seed"),
    (["score", "{tmp}/empty.yaml", "--task", "x/y"], "unknown task 'x/y'"),
    (["study", "status", "{config}", "-s", "training.lr_scheduler=bogus"], "unknown learning-rate scheduler"),
    (["train", "{config}", "--mixture", "{tmp}/api.jsonl", "--out", "{tmp}/r", "-s", "training.method=lora", "-s",
      "training.lora_target_modules=[q_proj, lm_head]"], "targets lm_head, the output layer"),
    (["eval", "{config}", "--out", "{tmp}/e", "-s", "models.0.source=gguf_package", "-s",
      "models.0.package=not-installed-pkg"], "model package 'not-installed-pkg' is not installed"),
    (["train", "{config}", "--mixture", "{tmp}/api.jsonl", "--out", "{tmp}/r"], "holds api examples, but the "
     "config's tasks are math"),
    (["train", "{config}", "--mixture", "{tmp}/eval.jsonl", "--out", "{tmp}/r"], "would be trained on"),
    (["train", "{config}", "--mixture", "{config}", "--out", "{tmp}/r"], "study.yaml:1: not a valid example"),
    (["train", "{config}", "--mixture", "{tmp}/none.jsonl", "--out", "{tmp}/r"], "--mixture"),
])
def test_bad_input_exits_2_naming_it(tmp_path, config, argv, message):
    from langmix.data.synth import SynthWorld, make_items, to_example

    (tmp_path / "empty.yaml").write_text("")
    # a mixture of another task, and one of the config's own evaluation items (its synthetic world's eval set)
    (tmp_path / "api.jsonl").write_text("".join(to_example(i, "en").model_dump_json() + "\n"
                                                for i in make_items("api", "train", 3, 0)))
    evaluation = SynthWorld(0, 60, 4).eval_examples("math", ["en"])
    (tmp_path / "eval.jsonl").write_text("".join(ex.model_dump_json() + "\n" for ex in evaluation))
    args = [a.replace("{config}", str(config)).replace("{tmp}", str(tmp_path)) for a in argv]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "out").exists()  # nothing was run or written


def test_local_dry_run_lists_the_runs_and_runs_nothing(tmp_path, config):
    result = runner.invoke(app, ["study", "run", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "nothing was run" in result.output and "pending" in result.output
    assert not list((tmp_path / "out").rglob("status.json"))


@pytest.mark.parametrize("argv, why", [
    (["eval", "{config}", "--out", "{file}"], "it is a file, not a directory"),
    (["eval", "{config}", "--out", "{file}/e"], "{file} is a file, not a directory"),
    (["eval", "{config}", "--study", "-s", "output_dir={file}"], "{file} is a file, not a directory"),
    (["train", "{config}", "--mixture", "{tmp}/m.jsonl", "--out", "{file}"], "it is a file, not a directory"),
    (["mix", "{config}", "--out", "{file}"], "it is a file, not a directory"),
    (["translate", "{tmp}/m.jsonl", "--to", "sw", "--backend", "memory", "--memory", "{tmp}/m.jsonl", "--out",
      "{file}/t"], "{file} is a file, not a directory"),
    (["score", "{tmp}/m.jsonl", "--task", "math", "--out", "{tmp}"], "it is a directory, not a file"),
    (["data", "synth", "--out", "{tmp}"], "it is a directory, not a file"),
    (["data", "synth", "--out", "{file}/s.jsonl"], "{file} is a file, not a directory"),
    (["plan", "--from", "{config}", "--targets", "sw", "--budget", "10", "--write", "{tmp}"],
     "it is a directory, not a file"),
    (["study", "run", "{config}", "-s", "output_dir={file}"], "{file} is a file, not a directory"),
    (["report", "{config}", "-s", "output_dir={file}"], "{file} is a file, not a directory"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, config, monkeypatch, argv,
                                                                           why):
    """`eval --out FILE` ran the whole evaluation, then crashed making the directory (FileExistsError), losing every
    generation; `train --out FILE` crashed the same way. Every command that writes checks its output path first."""
    import transformers

    from langmix import models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output path was checked")

    monkeypatch.setattr(models, "ensure_tiny", no_model)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "m.jsonl").write_text("")
    subs = {"{config}": str(config), "{tmp}": str(tmp_path), "{file}": str(tmp_path / "file")}

    def fill(text: str) -> str:
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    result = runner.invoke(app, [fill(a) for a in argv])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "cannot write" in output and fill(why) in output, result.output
    assert (tmp_path / "file").read_text() == "not a directory"


@pytest.mark.parametrize("extra, message", [
    ({"shots": 2}, "`shots: 2` needs `exemplars`"),  # the config is refused before any data is read
    ({"shots": 3, "exemplars": "{tmp}/ex.json"}, "ex.json: `shots: 3` needs 3 exemplars per language; en has 2"),
])
def test_mgsm_shots_without_enough_exemplars_exit_2_naming_the_key_and_file(tmp_path, extra, message):
    """`shots` without exemplars, or more shots than exemplars, raised a ValueError traceback from load_mgsm."""
    import json

    mgsm = tmp_path / "mgsm"
    mgsm.mkdir()
    (mgsm / "mgsm_en.tsv").write_text("Ann has 2 cats and 3 dogs. How many pets?\t5\n")
    (tmp_path / "ex.json").write_text(json.dumps({"MGSM_EXEMPLARS": {"en": {
        "1": {"q": "Q1?", "a": "The answer is 1."}, "2": {"q": "Q2?", "a": "The answer is 2."}}}}))
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "Bo has 4 pens and buys 1. How many?",
                                                      "answer": "4 + 1 = 5\n#### 5"}) + "\n")
    evaluation = {"format": "mgsm", "path": str(mgsm), **{k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str)
                                                         else v for k, v in extra.items()}}
    study = small_study_dict(tmp_path / "out", languages=["en"], mixtures=[{"design": "english_only"}],
                             budget={"total": 1}, data={"source": "files", "math": {
                                 "train": {"format": "gsm8k", "path": str(tmp_path / "train.jsonl")},
                                 "eval": evaluation}})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["mix", str(config), "--out", str(tmp_path / "mix")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "mix").exists()


@pytest.mark.parametrize("override, line", [
    ("seeds=[0, true]", "seeds.1: expected an integer, got a boolean"),  # was seeds [0, 1], exit 0
    ("training.epochs=true", "training.epochs: expected a number, got a boolean"),  # was 1.0 epoch
    # the mirror image (new-features probe): pydantic's lax bool read 0 as false
    ("evaluation.language_id=0", "evaluation.language_id: expected a boolean (true or false), got a number"),
])
def test_a_boolean_where_a_number_is_expected_exits_2_naming_the_key(tmp_path, config, override, line):
    result = runner.invoke(app, ["study", "run", str(config), "-s", override, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1].strip() == line, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, code", [
    (["report", "{config}"], 2), (["query", "{config}", "SELECT 1"], 2),
    (["plan", "--from", "{config}", "--targets", "sw", "--budget", "10"], 2),
    (["study", "status", "{config}"], 0), (["study", "cancel", "{config}"], 0), (["study", "plan", "{config}"], 0),
    (["study", "run", "{config}", "--dry-run"], 0),
    (["study", "run", "{config}", "--dry-run", "--launcher", "slurm"], 0),
])
def test_a_command_with_nothing_to_do_creates_nothing(tmp_path, config, argv, code):
    """`report` and `study cancel` on a study that never ran created <out>/<study>/report/.lock and
    <out>/<study>/slurm/jobs.lock: a command that reads a study (or cancels its SLURM jobs) writes nothing where
    there is nothing to read (or cancel)."""
    result = runner.invoke(app, [a.replace("{config}", str(config)) for a in argv])
    assert result.exit_code == code, result.output
    assert not (tmp_path / "out").exists(), sorted(str(p) for p in (tmp_path / "out").rglob("*"))


def test_cancel_on_a_study_never_submitted_creates_no_slurm_record(tmp_path, config):
    """`study cancel` on a study run locally created its slurm/jobs.lock."""
    (tmp_path / "out" / "t" / "eval").mkdir(parents=True)
    result = runner.invoke(app, ["study", "cancel", str(config)])
    assert result.exit_code == 0 and "nothing to cancel" in result.output, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "t").iterdir()) == ["eval"]
