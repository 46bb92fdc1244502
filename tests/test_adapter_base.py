"""A LoRA adapter applied to a base it was not trained on (another model's adapter, e.g. a SmolLM2 run's over the
tiny base): one line naming the adapter and both bases, not a 124-line state-dict traceback."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.config import EvalConfig
from tests.conftest import small_study_dict


@pytest.fixture(scope="module")
def foreign_adapter(tmp_path_factory):
    """A LoRA adapter trained (untrained, random weights: only the shapes matter) over a differently-shaped Llama."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("foreign")
    base = root / "other-base"
    LlamaForCausalLM(LlamaConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(base)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    adapter = root / "adapter"
    model.save_pretrained(adapter)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    return adapter, base


def test_load_trained_names_the_adapter_and_both_bases(tiny_model_cfg, tiny_model_path, foreign_adapter):
    from langmix.evaluate.run import load_for_evaluation
    from langmix.models import ModelError

    adapter, base = foreign_adapter
    with pytest.raises(ModelError) as caught:
        load_for_evaluation(tiny_model_cfg, tiny_model_path, adapter, EvalConfig())
    message = str(caught.value)
    assert "\n" not in message
    assert f"the LoRA adapter in {adapter} was trained on {base}" in message
    assert f"not on model 'tiny' ({tiny_model_path})" in message
    assert "size mismatch" in message  # the first mismatch, for whoever debugs it


def test_eval_of_an_adapter_of_another_base_is_one_line_exit_2(tmp_path, tiny_model_path, foreign_adapter):
    adapter, base = foreign_adapter
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(small_study_dict(tmp_path / "out")))
    result = CliRunner().invoke(app, ["eval", str(config), "--model", str(adapter), "--out", str(tmp_path / "e")])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error(s) in loading state_dict" not in result.output
    assert f"the LoRA adapter in {adapter} was trained on {base}, not on model 'tiny'" in output, result.output
    assert not (tmp_path / "e").exists()


def test_a_study_run_that_meets_it_fails_with_one_line(tmp_path, tiny_model_cfg, tiny_model_path, foreign_adapter,
                                                       caplog):
    """The study runner's evaluation loads models the same way: the run is failed, its log line and status.json's
    error are that one line (the traceback stays in status.json), not the state dict's 100-line dump."""
    from langmix.evaluate.run import load_for_evaluation
    from langmix.study.runner import _guarded
    from langmix.study.state import read_status

    adapter, _ = foreign_adapter
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR, logger="langmix"):
        outcome = _guarded(run, lambda: load_for_evaluation(tiny_model_cfg, tiny_model_path, adapter, EvalConfig()))
    assert outcome == "failed"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\n" not in record.getMessage() and f"the LoRA adapter in {adapter}" in record.getMessage()
    status = read_status(run)
    assert status["state"] == "failed" and "\n" not in status["error"] and "Traceback" in status["traceback"]


def test_a_failed_runs_log_line_is_the_errors_first_line(tmp_path, caplog):
    """Any error of many lines (PyTorch's state-dict errors list every tensor) is logged by its first line; the
    whole message and the traceback are in the run's status.json."""
    from langmix.study.runner import _guarded
    from langmix.study.state import read_status

    def work():
        raise RuntimeError("Error(s) in loading state_dict:\n\tsize mismatch for a\n\tsize mismatch for b")

    with caplog.at_level(logging.ERROR, logger="langmix"):
        assert _guarded(tmp_path / "run", work) == "failed"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == ("run run failed: Error(s) in loading state_dict: ... (2 more lines; "
                                   "the whole error is in its status.json)")
    assert read_status(tmp_path / "run")["error"].endswith("size mismatch for b")
