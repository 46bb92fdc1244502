"""End to end through the CLI on a small config: study run, status, report, query, and stage commands."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from tests.conftest import small_study_dict

runner = CliRunner()


def test_study_end_to_end(tmp_path, tiny_model_path):
    tree = small_study_dict(tmp_path / "out", tasks=["math", "api"])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = runner.invoke(app, ["study", "run", str(config)])
    assert result.exit_code == 0, result.output
    report = tmp_path / "out" / "t" / "report" / "report.html"
    assert str(report) in result.output and report.exists()
    md = (report.parent / "report.md").read_text()
    for section in ("## Findings", "Coverage curves", "Resource groups", "Minimal multilinguality: EN+1",
                    "Zero-shot", "Typology", "Capacity", "Language fidelity", "Per-language headline means",
                    "`multilingual` mode"):
        assert section in md
    # (the 30-step test model's answers carry no letters to judge, so the fidelity figure may be absent)
    assert {p.name for p in (report.parent / "plots").iterdir()} >= {"coverage.png", "coverage.svg",
                                                                     "en_plus_one.png"}

    status = runner.invoke(app, ["study", "status", str(config)])
    assert status.exit_code == 0 and "done: 10" in status.output  # 4 trainings + 6 evaluations

    query = runner.invoke(app, ["query", str(config),
                                "SELECT count(DISTINCT run_hash) AS runs, count(*) AS rows, "
                                "count(*) FILTER (WHERE metric = 'response_language_unjudged' AND value = 1) AS none "
                                "FROM results"])
    assert query.exit_code == 0
    runs, rows, none_judged = query.output.split()[-3:]
    # 3 runs per task x 3 languages x (5 math metrics + 5 api metrics, each with context_exceeded), less the
    # fidelity rows of (run, language) cells where no response could be language-judged (no figure rather than 0%)
    assert int(runs) == 6 and int(rows) == 3 * 3 * 6 + 3 * 3 * 6 - int(none_judged)

    items = runner.invoke(app, ["query", str(config), "SELECT count(*) AS n FROM items"])
    assert int(items.output.split()[-1]) == 6 * 3 * 4  # eval runs x languages x items

    again = runner.invoke(app, ["study", "run", str(config), "--no-report"])
    assert again.exit_code == 0 and "done 0, skipped 10" in again.output


def test_bad_config_exits_with_message(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("training:\n  epochz: 3\n")
    result = runner.invoke(app, ["study", "run", str(config)])
    assert result.exit_code == 2
    assert "training.epochz" in result.output and "unknown key" in result.output


def test_unknown_language_on_command_line(tmp_path):
    result = runner.invoke(app, ["data", "synth", "--languages", "en,klingon"])
    assert result.exit_code == 2 and "klingon" in result.output


@pytest.mark.parametrize("task", ["math", "api"])
def test_synth_train_and_eval_files_share_no_question(tmp_path, task):
    """A train file and an eval file of one seed drew from one item space: 17 of 1,000 math and 371 of 1,000 API
    eval questions were also training questions (before --held-out)."""
    def questions(split: str, n: int) -> set[str]:
        out = tmp_path / f"{split}.jsonl"
        result = runner.invoke(app, ["data", "synth", "--task", task, "--split", split, "--n", str(n),
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == n
        return {row["messages"][-2]["content"] for row in rows}

    assert not questions("train", 2000) & questions("eval", 1000)
    refused = runner.invoke(app, ["data", "synth", "--split", "eval", "--n", "1001"])
    assert refused.exit_code == 2 and "--held-out" in refused.output


def test_stage_commands(tmp_path, tiny_model_path):
    tree = small_study_dict(tmp_path / "out")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    synth = runner.invoke(app, ["data", "synth", "--task", "api", "--languages", "en,sw", "--n", "3",
                                "--out", str(tmp_path / "s.jsonl")])
    assert synth.exit_code == 0 and len((tmp_path / "s.jsonl").read_text().splitlines()) == 6

    mix = runner.invoke(app, ["mix", str(config), "--out", str(tmp_path / "mix")])
    assert mix.exit_code == 0, mix.output
    manifest = json.loads((tmp_path / "mix" / "en_sw-math-s0" / "manifest.json").read_text())
    assert manifest["examples_per_language"] == {"en": 12, "sw": 12}

    train = runner.invoke(app, ["train", str(config), "--mixture", str(tmp_path / "mix" / "en_sw-math-s0" /
                                                                      "data.jsonl"), "--out", str(tmp_path / "run")])
    assert train.exit_code == 0, train.output
    assert (tmp_path / "run" / "config.yaml").exists()
    # the same training again: finished, so nothing is redone (it resumed from the last checkpoint and rewrote
    # final/); another config into the same directory is still refused
    summary = (tmp_path / "run" / "train_summary.json").read_text()
    again = runner.invoke(app, ["train", str(config), "--mixture", str(tmp_path / "mix" / "en_sw-math-s0" /
                                                                      "data.jsonl"), "--out", str(tmp_path / "run")])
    assert again.exit_code == 0 and "already holds this training, finished" in " ".join(again.output.split())
    assert (tmp_path / "run" / "train_summary.json").read_text() == summary
    other = runner.invoke(app, ["train", str(config), "--mixture", str(tmp_path / "mix" / "en_sw-math-s0" /
                                                                      "data.jsonl"), "--out", str(tmp_path / "run"),
                                "-s", "training.learning_rate=0.5"])
    assert other.exit_code == 2 and "holds another run's training" in " ".join(other.output.split())

    ev = runner.invoke(app, ["eval", str(config), "--model", str(tmp_path / "run" / "final"),
                             "--out", str(tmp_path / "eval")])
    assert ev.exit_code == 0, ev.output
    unknown = runner.invoke(app, ["eval", str(config), "--base", "nope", "--out", str(tmp_path / "e2")])
    assert unknown.exit_code == 2 and "--base nope: no model of that name" in " ".join(unknown.output.split())
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {m["language"] for m in metrics} == {"en", "es", "sw"}


def test_eval_of_a_lora_adapter_scores_what_the_study_scores(tmp_path, tiny_model_path):
    """`langmix eval --model OUT/final` on a LoRA run (an adapter, not a model) merges it over the config's base
    model, and gives the metrics the study's own evaluation of that run gave."""
    from langmix.config import StudyConfig
    from langmix.study.grid import expand
    from langmix.study.runner import eval_dir, run_study, train_dir

    tree = small_study_dict(tmp_path / "out", include_base=False, mixtures=[{"design": "english_only"}],
                            training={"method": "lora", "max_steps": 4, "learning_rate": 0.01})
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    assert not run_study(cfg)["failed"]
    (job,) = expand(cfg)
    final = train_dir(cfg, job.train) / "final"
    assert (final / "adapter_config.json").exists()
    ev = runner.invoke(app, ["eval", str(config), "--model", str(final), "--out", str(tmp_path / "eval")])
    assert ev.exit_code == 0, ev.output
    got = {(m["language"], m["metric"]): m["value"] for m in json.loads((tmp_path / "eval" / "metrics.json")
                                                                      .read_text())}
    import pyarrow.parquet as pq

    want = pq.read_table(eval_dir(cfg, job.evals[0]) / "results.parquet").to_pandas()
    assert len(want) and all(got[(r.language, r.metric)] == pytest.approx(r.value) for r in want.itertuples())
    missing = runner.invoke(app, ["eval", str(config), "--model", str(tmp_path / "nope"), "--out",
                                  str(tmp_path / "e2")])
    assert missing.exit_code == 2 and "is not a trained model directory" in missing.output


@pytest.mark.parametrize("argv, message", [
    (["eval", "{config}", "--out", "{tmp}/e", "-s", "data.source=files",
      "-s", "data.math={eval: {format: mgsm, path: {tmp}/no-such-dir}}"], "no-such-dir: no such directory"),
    (["eval", "{config}", "--out", "{tmp}/e", "-s", "languages=[en, klingon]"], "klingon"),
    (["mix", "{config}", "--out", "{tmp}/m", "-s", "data.source=files",
      "-s", "data.math={train: {format: gsm8k, path: {tmp}/bad.jsonl}, eval: {format: gsm8k, path: {tmp}/bad.jsonl}}"],
     "bad.jsonl:1"),
])
def test_bad_inputs_exit_2_with_one_line_and_no_traceback(tmp_path, tiny_model_path, argv, message):
    """Through the installed entry point (the `langmix` console script), as a user runs it."""
    import os
    import subprocess
    import sys

    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(small_study_dict(tmp_path / "out")))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    args = [a.replace("{config}", str(config)).replace("{tmp}", str(tmp_path)) for a in argv]
    exe = os.path.join(os.path.dirname(sys.executable), "langmix")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_eval_rates_carry_their_wilson_interval():
    """`langmix eval` printed each rate with its n but no interval; a share of items gets its 95% Wilson interval
    (5 of 10: 0.5 +- 1.96 sqrt(0.25 x 10 + 0.96) / 13.84), any other value none."""
    from langmix.cli import rate_with_interval

    assert rate_with_interval(0.5, 10) == "0.500 [0.237, 0.763]"
    assert rate_with_interval(0.0, 4) == "0.000 [0.000, 0.490]"
    assert rate_with_interval(1 / 3, 10) == "0.333"  # not k/10: no interval to give
    assert rate_with_interval(2.5, 2) == "2.500"


def test_eval_out_writes_the_resolved_config_beside_its_outputs(tmp_path, tiny_model_path):
    """`eval --out DIR` wrote only predictions.jsonl and metrics.json, though the README says the resolved config is
    written beside every output: config.yaml now, overrides applied, and it loads back as the config evaluated."""
    from langmix.config_loading import load_config

    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(small_study_dict(tmp_path / "out")))
    out = tmp_path / "e"
    ev = runner.invoke(app, ["eval", str(config), "--out", str(out), "-s", "evaluation.batch_size=3",
                             "-s", "languages=[en, sw]"])
    assert ev.exit_code == 0, ev.output
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "metrics.json", "predictions.jsonl"]
    written = load_config(out / "config.yaml")
    assert written == load_config(config, ["evaluation.batch_size=3", "languages=[en, sw]"])
    assert (written.evaluation.batch_size, written.languages) == (3, ["en", "sw"])


@pytest.mark.parametrize("module", ["langmix.cli", "langmix.cli_study", "langmix.cli_results", "langmix.cli_data"])
def test_each_cli_module_imports_first(module):
    """`import langmix.cli_study` in a fresh process failed (a circular import through langmix.cli's command
    registration into cli_results): a test importing it first passed only when another test had imported
    langmix.cli before it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
