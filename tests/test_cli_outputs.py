"""A file a command writes never replaces the user's: not the command's own input (its config, its source data), in
any spelling of its path, even with --force; an existing file named by --out/--write only with --force. Found by a
probe: `plan --from small.yaml --write small.yaml` replaced the study's config with the recommendation, exit 0."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from tests.conftest import small_study_dict

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("# the user's own config, comments and all\n" + yaml.safe_dump(small_study_dict(tmp_path / "out")))
    return path


def _one_line(result) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("write", ["{config}", "{tmp}/sub/../study.yaml", "{tmp}/link.yaml", "{tmp}/out/t/study.yaml"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_plan_never_writes_over_the_study_config(tmp_path, config, monkeypatch, write, force):
    """The --from config (also spelt with `..`, or through a link) and the study's own record of it
    (<output_dir>/<name>/study.yaml) are refused with or without --force, before any work; the files stay as they
    were."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.yaml").symlink_to(config)
    record = tmp_path / "out" / "t" / "study.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(config.read_text())
    before = config.read_text()
    target = write.replace("{config}", str(config)).replace("{tmp}", str(tmp_path))
    result = runner.invoke(app, ["plan", "--from", str(config), "--targets", "sw", "--budget", "100", "--write",
                                 target, *force])
    assert result.exit_code == 2, result.output
    what = "the study's record of its config" if "out/t" in write else "the --from study's config"
    assert f"cannot write {target} (--write): it is {what}" in _one_line(result), result.output
    assert "no finished evaluation runs" not in result.output  # refused before the study was read
    assert config.read_text() == before and record.read_text() == before


def test_plan_from_a_study_directory_never_writes_over_its_study_yaml(tmp_path, config):
    record = tmp_path / "out" / "t" / "study.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(config.read_text())
    result = runner.invoke(app, ["plan", "--from", str(record.parent), "--targets", "sw", "--budget", "100",
                                 "--write", str(record), "--force"])
    assert result.exit_code == 2, result.output
    assert "it is the --from study's config" in _one_line(result)
    assert record.read_text() == config.read_text()


def test_plan_replaces_another_existing_file_only_with_force(tmp_path, config):
    other = tmp_path / "next.yaml"
    other.write_text("mine\n")
    argv = ["plan", "--from", str(config), "--targets", "sw", "--budget", "100", "--write", str(other)]
    refused = runner.invoke(app, argv)
    assert refused.exit_code == 2, refused.output
    assert _one_line(refused) == (f"cannot write {other} (--write): the file exists; pass --force to replace it, or "
                                  "choose another --write")
    forced = runner.invoke(app, [*argv, "--force"])  # past the check: this study has no finished run to plan from
    assert forced.exit_code == 2 and "no finished evaluation runs" in forced.output, forced.output
    assert other.read_text() == "mine\n"


def _refused_then_forced(argv: list[str], out) -> None:
    """`argv` naming the existing file `out` ("mine") is refused and leaves it alone; with --force it runs."""
    refused = runner.invoke(app, argv)
    assert refused.exit_code == 2, refused.output
    assert "the file exists; pass --force to replace it" in _one_line(refused)
    assert out.read_text() == "mine\n"
    forced = runner.invoke(app, [*argv, "--force"])
    assert forced.exit_code == 0, forced.output


def test_data_synth_replaces_an_existing_out_file_only_with_force(tmp_path):
    out = tmp_path / "notes.jsonl"
    out.write_text("mine\n")
    _refused_then_forced(["data", "synth", "--n", "2", "--out", str(out)], out)
    assert len(out.read_text().splitlines()) == 2


def test_score_replaces_an_existing_out_file_only_with_force(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"language": "en", "output": "The answer is 7.", "reference": 7}) + "\n")
    out = tmp_path / "v.jsonl"
    out.write_text("mine\n")
    _refused_then_forced(["score", str(preds), "--task", "math", "--out", str(out)], out)
    assert json.loads(out.read_text())["correct"] is True
    again = runner.invoke(app, ["score", str(preds), "--task", "math"])  # the default path is the command's own
    assert again.exit_code == 0 and runner.invoke(app, ["score", str(preds), "--task", "math"]).exit_code == 0


@pytest.mark.parametrize("command", ["eval", "train", "mix"])
def test_a_directory_output_never_writes_over_the_config(tmp_path, config, monkeypatch, command):
    """`eval CONFIG --out DIR` writes DIR/config.yaml (the resolved config): with the user's config there, it was
    replaced by the resolved dump (comments gone, overrides baked in); so did `train` and `mix`."""
    import transformers

    from langmix import models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output path was checked")

    monkeypatch.setattr(models, "ensure_tiny", no_model)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    out = tmp_path / "exp"
    mine = out / ("en-math-s0" if command == "mix" else "") / "config.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(config.read_text())
    (tmp_path / "m.jsonl").write_text("")
    extra = ["--mixture", str(tmp_path / "m.jsonl")] if command == "train" else []
    result = runner.invoke(app, [command, str(mine), "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    assert f"cannot write {mine} (--out): it is the config file" in _one_line(result), result.output
    assert mine.read_text() == config.read_text()


def test_translate_never_writes_over_its_source(tmp_path):
    """`translate t/data.jsonl --to bn --out t` replaced t/data.jsonl (English and Swahili rows) with its English rows
    and the new Bengali ones: the Swahili rows were lost."""
    from langmix.data.synth import make_items, to_example

    out = tmp_path / "t"
    out.mkdir()
    source = out / "data.jsonl"
    source.write_text("".join(to_example(item, lang).model_dump_json() + "\n" for item in make_items("math", "train",
                                                                                                  2, 0)
                              for lang in ("en", "sw")))
    before = source.read_text()
    result = runner.invoke(app, ["translate", str(source), "--to", "bn", "--backend", "memory", "--memory",
                                 str(source), "--out", str(out), "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2, result.output
    assert f"cannot write {source} (--out): it is the SOURCE file" in _one_line(result), result.output
    assert source.read_text() == before and sorted(p.name for p in out.iterdir()) == ["data.jsonl"]
