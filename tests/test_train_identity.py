"""Resuming is safe: another run's checkpoints are refused, and an incomplete newest checkpoint is skipped."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from langmix.config import TrainingConfig
from langmix.data.synth import make_items, to_example
from langmix.train import IdentityError, latest_checkpoint, train

EXAMPLES = [to_example(i, lang) for i in make_items("math", "train", 12, 0) for lang in ("en", "sw")]
CFG = TrainingConfig(max_steps=4, batch_size=8, save_steps=2, logging_steps=1, max_length=256)


class Crash(TrainerCallback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt("simulated preemption")


def test_another_runs_checkpoints_are_refused(tiny_model_cfg, tiny_model_path, tmp_path):
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, CFG, 0, tmp_path, show_progress=False)
    other = EXAMPLES[:12]  # another mixture into the same directory
    with pytest.raises(IdentityError, match="holds another run's training"):
        train(tiny_model_cfg, tiny_model_path, other, CFG, 0, tmp_path, show_progress=False)
    with pytest.raises(IdentityError, match="holds another run's training"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, CFG.model_copy(update={"learning_rate": 1e-5}), 0, tmp_path,
              show_progress=False)
    with pytest.raises(IdentityError):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, CFG, 1, tmp_path, show_progress=False)  # another seed
    # the checkpoint interval is not part of a run's identity
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, CFG.model_copy(update={"save_steps": 3}), 0, tmp_path,
          show_progress=False)


def test_checkpoints_without_identity_are_refused(tiny_model_cfg, tiny_model_path, tmp_path):
    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(IdentityError, match="unknown run"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, CFG, 0, tmp_path, show_progress=False)


def test_an_output_directory_that_is_a_file_is_refused_before_loading_a_model(tiny_model_cfg, tmp_path):
    """It crashed in check_identity's mkdir (FileExistsError) with a traceback; now a one-line input error."""
    from langmix.errors import UserInputError

    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(UserInputError, match=f"cannot write {out} .*is a file, not a directory"):
            train(tiny_model_cfg, "/nonexistent-model", EXAMPLES, CFG, 0, out, show_progress=False)


def test_truncated_newest_checkpoint_falls_back(tiny_model_cfg, tiny_model_path, tmp_path, caplog):
    cfg = CFG.model_copy(update={"max_steps": 6})
    ref = tmp_path / "ref"
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, ref, show_progress=False)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, run, show_progress=False, callbacks=[Crash(5)])
    newest = run / "checkpoints" / "checkpoint-4"
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # killed while saving
    with caplog.at_level(logging.WARNING, logger="langmix.train"):
        assert latest_checkpoint(run / "checkpoints").name == "checkpoint-2"
    assert "checkpoint-4 is incomplete (model.safetensors is truncated" in caplog.text
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, run, show_progress=False)
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 6
    got, want = load_file(str(run / "final" / "model.safetensors")), load_file(str(ref / "final" /
                                                                                    "model.safetensors"))
    for name in want:
        torch.testing.assert_close(got[name], want[name])


@pytest.mark.parametrize("header", [b"[1, 2]", b'{"w": {"dtype": "F32", "shape": [1]}}',
                                    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": "ab"}}',
                                    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}}',
                                    b'{"w": 3}', None])
def test_a_checkpoint_with_a_garbled_safetensors_header_is_skipped(tmp_path, caplog, header):
    """A safetensors header that is JSON of another shape (no data_offsets, a list, a string offset) raised
    KeyError/TypeError out of the resume check, and a garbled length asked to read up to 2**64 bytes: each makes
    the checkpoint incomplete, and the run resumes from the one before (stop-25 leftover)."""
    from safetensors.torch import save_file

    for step in (2, 4):
        ckpt = tmp_path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text("{}")
        save_file({"w": torch.zeros(1)}, str(ckpt / "model.safetensors"))
    weights = tmp_path / "checkpoints" / "checkpoint-4" / "model.safetensors"
    if header is None:  # the length field itself garbled
        weights.write_bytes((2 ** 63).to_bytes(8, "little") + weights.read_bytes()[8:])
    else:
        weights.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with caplog.at_level(logging.WARNING, logger="langmix.train"):
        assert latest_checkpoint(tmp_path / "checkpoints").name == "checkpoint-2"
    assert "checkpoint-4 is incomplete (model.safetensors " in caplog.text
