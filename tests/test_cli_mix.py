"""`langmix mix` applies the study's contamination check (it used not to) and names the clashing items."""

from __future__ import annotations

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
