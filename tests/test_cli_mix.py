"""`langmix mix` applies the study's contamination check (it used not to) and names the clashing items."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.data.synth import make_items, to_example


def test_mix_refuses_training_on_evaluation_items(tmp_path):
    train_items, eval_items = make_items("math", "train", 20, 0), make_items("math", "eval", 3, 0)
    leaked = to_example(eval_items[0], "en")
    leaked = leaked.model_copy(update={"source_id": "not-the-eval-id", "id": "leak-en", "messages": [
        {**leaked.messages[0], "content": "  " + leaked.messages[0]["content"].upper() + " "}, *leaked.messages[1:]]})
    train = tmp_path / "train.jsonl"
    train.write_text("".join(to_example(i, "en").model_dump_json() + "\n" for i in train_items)
                     + leaked.model_dump_json() + "\n")
    evaluation = tmp_path / "eval.jsonl"
    evaluation.write_text("".join(to_example(i, "en").model_dump_json() + "\n" for i in eval_items))
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "languages": ["en"], "tasks": ["math"], "mixtures": [{"design": "english_only"}],
        "budget": {"total": 21}, "data": {"source": "files", "math": {
            "train": {"format": "examples", "path": str(train)}, "eval": {"format": "examples",
                                                                         "path": str(evaluation)}}}}))
    result = CliRunner().invoke(app, ["mix", str(config), "--out", str(tmp_path / "mix")])
    assert result.exit_code == 2
    assert "leak-en" in result.output and eval_items[0].source_id in result.output
    assert not (tmp_path / "mix" / "en-math-s0" / "data.jsonl").exists()


def _synth_config(tmp_path, **fields):
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({"languages": ["en", "es", "sw"], "tasks": ["math"],
                                      "data": {"source": "synth", "train_pool": 10, "eval_items": 5}, **fields}))
    return config


def test_a_budget_one_mixture_cannot_meet_is_refused_before_any_mixture_is_written(tmp_path):
    """`mix` wrote en, en+es and en+sw, then stopped at the 3-language mixture (12 distinct sources from a pool of
    10), leaving three of five directories; every budget is now checked first."""
    config = _synth_config(tmp_path, budget={"mode": "per_language", "per_language": 4}, mixtures=[
        {"design": "english_only"}, {"design": "en_plus_one"}, {"design": "fixed", "languages": ["en", "es", "sw"]}])
    result = CliRunner().invoke(app, ["mix", str(config), "--out", str(tmp_path / "mix")])
    assert result.exit_code == 2
    assert "mixture 'en+es+sw': 12 examples with distinct sources requested but the pool holds 10" in result.output
    assert not (tmp_path / "mix").exists() or not any((tmp_path / "mix").iterdir())
    small = _synth_config(tmp_path, budget={"total": 2},
                          mixtures=[{"design": "fixed", "languages": ["en", "es", "sw"]}])
    result = CliRunner().invoke(app, ["mix", str(small), "--out", str(tmp_path / "mix")])
    assert result.exit_code == 2
    assert "mixture 'en+es+sw': fixed_total budget 2 is smaller than the 3 languages" in result.output


def test_a_study_refuses_a_budget_before_training_anything(tmp_path):
    from langmix.config_loading import load_config
    from langmix.mixtures import MixtureError
    from langmix.study.runner import run_study

    config = _synth_config(tmp_path, budget={"mode": "per_language", "per_language": 4}, output_dir="runs", mixtures=[
        {"design": "english_only"}, {"design": "fixed", "languages": ["en", "es", "sw"]}])
    cfg = load_config(config)
    with pytest.raises(MixtureError, match="mixture 'en\\+es\\+sw': 12 examples"):
        run_study(cfg)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("train/*"))


@pytest.mark.parametrize("mixtures, named", [
    ([{"design": "en_plus_one", "languages": ["en"]}], "mixtures.0 (en_plus_one)"),
    ([{"design": "english_only"}, {"design": "growing", "languages": ["en"]}], "mixtures.1 (growing)")])
def test_a_design_that_makes_no_mixture_is_a_config_error(tmp_path, mixtures, named):
    """An en_plus_one or growing design over English alone expanded to nothing: `mix` exited 0 writing nothing,
    and a study planned without it."""
    result = CliRunner().invoke(app, ["mix", str(_synth_config(tmp_path, mixtures=mixtures)), "--out",
                                      str(tmp_path / "mix")])
    assert result.exit_code == 2 and named in result.output and "no language other than English" in result.output


def test_mix_with_no_design_says_so(tmp_path):
    result = CliRunner().invoke(app, ["mix", str(_synth_config(tmp_path, mixtures=[])), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "lists no design" in result.output


def test_mix_into_a_directory_holding_other_mixtures_says_so(tmp_path):
    """Mixtures of an earlier config stayed beside the new ones in --out without a word."""
    first = _synth_config(tmp_path, budget={"total": 6}, mixtures=[{"design": "english_only"},
                                                                   {"design": "en_plus_one", "languages": ["sw"]}])
    assert CliRunner().invoke(app, ["mix", str(first), "--out", str(tmp_path / "m")]).exit_code == 0
    second = _synth_config(tmp_path, budget={"total": 6}, mixtures=[{"design": "english_only"}])
    result = CliRunner().invoke(app, ["mix", str(second), "--out", str(tmp_path / "m")])
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "also holds 1 mixture(s) this config does not write" in text, result.output
    assert "en_sw-math-s0" in text


def test_train_refuses_a_mixture_whose_items_other_rows_are_evaluation_questions(tmp_path):
    """`train --mixture` runs the study's contamination check, which compares each item's rows in the training
    data's other languages (`mixtures.item_rows`): an es row whose English row is an evaluation question (under
    another source id) is a translation of it. The CLI compared the es rows alone and trained on it."""
    train_items, eval_items = make_items("math", "train", 6, 0), make_items("math", "eval", 3, 0)
    english = [to_example(i, "en") for i in train_items]
    spanish = [to_example(i, "es") for i in train_items]
    (tmp_path / "train.jsonl").write_text("".join(ex.model_dump_json() + "\n" for ex in english + spanish))
    leaked = english[2]  # its English question is now in the eval set, under an eval file's id
    evaluation = [to_example(i, "en") for i in eval_items] + [leaked.model_copy(update={
        "source_id": "eval-file-9", "id": "eval-file-9-en"})]
    (tmp_path / "eval.jsonl").write_text("".join(ex.model_dump_json() + "\n" for ex in evaluation))
    (tmp_path / "mix.jsonl").write_text("".join(ex.model_dump_json() + "\n" for ex in spanish))
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "languages": ["en", "es"], "tasks": ["math"], "mixtures": [{"design": "fixed", "languages": ["es"]}],
        "data": {"source": "files", "math": {"train": {"format": "examples", "path": str(tmp_path / "train.jsonl")},
                                             "eval": {"format": "examples", "path": str(tmp_path / "eval.jsonl")}}}}))
    result = CliRunner().invoke(app, ["train", str(config), "--mixture", str(tmp_path / "mix.jsonl"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "eval-file-9" in result.output and spanish[2].id in " ".join(result.output.split()), result.output
    assert not (tmp_path / "out").exists()
