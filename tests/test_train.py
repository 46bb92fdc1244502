import json

import pytest
import torch
from transformers import TrainerCallback

from langmix.config import TrainingConfig
from langmix.data.synth import make_items, to_example
from langmix.models import load_tokenizer
from langmix.tokenization import tokenizer_state
from langmix.train import IdentityError, LabelMaskError, assistant_masks, check_label_masks, latest_checkpoint, train

EXAMPLES = [to_example(i, lang) for i in make_items("math", "train", 12, 0) for lang in ("en", "sw")]


def test_chat_template_masks_exactly_the_assistant_turn(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    ex = EXAMPLES[0]
    enc = tok.apply_chat_template(ex.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    trained = tok.decode([t for t, m in zip(ids, mask) if m])
    assert trained == ex.target() + "<|end|>"  # the answer and the end-of-turn token, nothing else
    prompt = tok.decode([t for t, m in zip(ids, mask) if not m])
    assert ex.messages[0]["content"] in prompt and "<|assistant|>" in prompt


def test_label_mask_checks(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    check_label_masks(assistant_masks(tok, EXAMPLES, 512), EXAMPLES, 512)
    with pytest.raises(LabelMaskError, match=f"{EXAMPLES[0].id}: every label is masked \\(the assistant turn is "
                                             f"cut off at training.max_length=8; raise it\\)"):
        check_label_masks(assistant_masks(tok, EXAMPLES[:1], 8), EXAMPLES[:1], 8)
    with pytest.raises(LabelMaskError, match="no label is masked"):
        check_label_masks([[1, 1, 1]], EXAMPLES[:1], 512)
    # a conversation that ends with the user: not a truncation, whatever its length
    asks = EXAMPLES[0].model_copy(update={"messages": EXAMPLES[0].messages[:1]})
    with pytest.raises(LabelMaskError, match="no assistant turn to learn from \\(its last message is 'user'\\)"):
        check_label_masks(assistant_masks(tok, [asks], 512), [asks], 512)


def test_truncated_assistant_turn_fails_training(tiny_model_cfg, tiny_model_path, tmp_path):
    cfg = TrainingConfig(max_steps=1, max_length=16)
    with pytest.raises(LabelMaskError, match="max_length=16"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
    # the run saved nothing, so the corrected run may use the same directory (it was refused as "another run's
    # training" because of the identity.json the failed run left)
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, TrainingConfig(max_steps=1, max_length=256, save_steps=1), 0,
          tmp_path, show_progress=False)
    assert (tmp_path / "final").exists()
    with pytest.raises(IdentityError, match="holds another run's training"):  # now there is work to protect
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, TrainingConfig(max_steps=2, max_length=256), 0, tmp_path,
              show_progress=False)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_train_saves_final_model(tiny_model_cfg, tiny_model_path, tmp_path, method):
    cfg = TrainingConfig(method=method, max_steps=3, batch_size=8, save_steps=2, logging_steps=1, max_length=256,
                         packing=method == "full")  # LoRA through TRL's own padded path
    shared = load_tokenizer(tiny_model_cfg, tiny_model_path, reuse=True)
    before = tokenizer_state(shared)
    model, tok = train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
    assert tok is shared and tokenizer_state(tok) == before  # training shares the tokenizer and changes nothing
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["global_step"] == 3 and summary["resumed_from"] is None
    final = tmp_path / "final"
    assert (final / ("adapter_config.json" if method == "lora" else "config.json")).exists()
    assert not hasattr(model, "peft_config")  # LoRA is merged for evaluation
    # a checkpoint (no tokenizer saved in it) loads too, with the base model's tokenizer: `eval --model
    # RUN/checkpoints/checkpoint-2` raised transformers' "Couldn't instantiate the backend tokenizer"
    from langmix.models import load_trained

    tokenizer, at_step_2 = load_trained(tiny_model_cfg, tiny_model_path, tmp_path / "checkpoints" / "checkpoint-2")
    assert tokenizer_state(tokenizer) == before and not hasattr(at_step_2, "peft_config")


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("simulated preemption")


def test_resume_from_checkpoint(tiny_model_cfg, tiny_model_path, tmp_path):
    cfg = TrainingConfig(max_steps=5, batch_size=8, save_steps=2, logging_steps=1, max_length=256)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False,
              callbacks=[Crash()])
    assert latest_checkpoint(tmp_path / "checkpoints").name == "checkpoint-2"
    assert not (tmp_path / "final").exists()
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2")
    assert summary["global_step"] == 5
    assert latest_checkpoint(tmp_path / "checkpoints").name == "checkpoint-4"  # none after the last step
    for ckpt in (tmp_path / "checkpoints").iterdir():  # what resuming reads, not the tokenizer or a model card
        names = {f.name for f in ckpt.iterdir()}
        assert {"model.safetensors", "optimizer.pt", "trainer_state.json"} <= names, names
        assert not names & {"tokenizer.json", "tokenizer_config.json", "README.md"}, names
    assert (tmp_path / "final" / "tokenizer.json").exists()
    state = json.loads((tmp_path / "final" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    steps_logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps_logged == [1, 2, 3, 4, 5]  # steps 1-2 from before the crash, 3-5 after resuming
    # the summary's mean loss covers every step, as an uninterrupted run's does (not only those after resuming)
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path / "whole", show_progress=False)
    whole = json.loads((tmp_path / "whole" / "train_summary.json").read_text())
    logged = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert summary["train_loss"] == pytest.approx(sum(logged) / 5, rel=1e-12) and summary["train_loss_steps"] == 5
    assert summary["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)


def test_adapters_of_one_base_are_loaded_without_rereading_the_base(tiny_model_cfg, tiny_model_path, tmp_path,
                                                                     monkeypatch):
    """Evaluating several LoRA runs of one base reads the base from disk once: each adapter is merged into a copy
    of the base in memory, and each merged model equals the trainer's own merged model."""
    import torch
    from transformers import AutoModelForCausalLM

    from langmix import models

    trained = {}
    for seed in (0, 1):
        cfg = TrainingConfig(method="lora", max_steps=2, batch_size=4, save_steps=100, logging_steps=1,
                             max_length=256, learning_rate=1e-2)
        trained[seed], _ = train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, seed, tmp_path / f"s{seed}",
                                 show_progress=False)
    models._BASES.clear()
    reads = []
    real = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda path, *a, **kw: (reads.append(str(path)), real(path, *a, **kw))[1])
    for seed in (0, 1):
        _, merged = models.load_trained(tiny_model_cfg, tiny_model_path, tmp_path / f"s{seed}" / "final")
        for (name, a), (_, b) in zip(merged.state_dict().items(), trained[seed].state_dict().items()):
            torch.testing.assert_close(a, b, msg=name)
    assert reads == [str(tiny_model_path)]


class CrashAt4(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 4:
            raise KeyboardInterrupt("simulated preemption")


def test_loss_after_resuming_between_logs_is_weighted_by_the_steps_it_covers(tiny_model_cfg, tiny_model_path,
                                                                              tmp_path):
    """Checkpoints every 3 steps, logs every 2: the checkpoint's step is logged too, so resumed at step 3 nothing
    is lost (step 3's loss died with the crash before checkpoints logged), the next log (step 4) averages step 4
    alone, and the run reports the train_loss of an uninterrupted one."""
    cfg = TrainingConfig(max_steps=6, batch_size=8, save_steps=3, logging_steps=2, max_length=256)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path / "resumed", show_progress=False,
              callbacks=[CrashAt4()])
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path / "resumed", show_progress=False)
    state = json.loads((tmp_path / "resumed" / "final" / "trainer_state.json").read_text())
    logged = [(h["step"], h["loss_steps"], h["loss"]) for h in state["log_history"] if "loss" in h]
    assert [(step, n) for step, n, _ in logged] == [(2, 2), (3, 1), (4, 1), (6, 2)]
    summary = json.loads((tmp_path / "resumed" / "train_summary.json").read_text())
    assert summary["train_loss_steps"] == 6
    assert summary["train_loss"] == pytest.approx(sum(n * loss for _, n, loss in logged) / 6, rel=1e-12)
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path / "straight", show_progress=False)
    straight = json.loads((tmp_path / "straight" / "train_summary.json").read_text())
    assert straight["train_loss_steps"] == 6
    assert summary["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-5)


def test_mean_logged_loss_weights_each_log_by_the_steps_it_covers():
    from langmix.train_callbacks import mean_logged_loss

    history = [{"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.0}, {"step": 25, "loss": 0.4}]
    assert mean_logged_loss(history) == pytest.approx((10 * 2.0 + 10 * 1.0 + 5 * 0.4) / 25)
    assert mean_logged_loss([]) is None


@pytest.mark.parametrize("packing", [True, False])
@pytest.mark.parametrize("at", ["answers", "exact_fit"])
def test_answers_cut_at_max_length_are_counted_in_a_warning(tiny_model_cfg, tiny_model_path, tmp_path, caplog,
                                                            packing, at):
    """A max_length that cut every answer short of its end (its final answer line) trained without a word; only
    an answer cut away entirely was an error. An example exactly max_length long was counted as cut."""
    import logging

    full = assistant_masks(load_tokenizer(tiny_model_cfg, tiny_model_path), EXAMPLES, None)
    cut = max(mask.index(1) for mask in full) + 1  # past every prompt: each example keeps some answer tokens
    if at == "exact_fit":  # every answer ends at or before max_length, the latest exactly there
        cut = max(len(mask) - mask[::-1].index(1) for mask in full)
    expected = sum(1 for mask in full if any(mask[cut:]))  # trained tokens lost: cut inside its answer
    assert (0 < expected) == (at == "answers")
    cfg = TrainingConfig(max_steps=1, max_length=cut, packing=packing, save_steps=100)
    with caplog.at_level(logging.WARNING, logger="langmix.train"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
    if expected:
        assert f"{expected} of {len(EXAMPLES)} training examples are cut at training.max_length={cut}" in caplog.text
    else:
        assert "training examples are cut" not in caplog.text


def test_lora_target_modules_that_match_nothing_are_one_line(tiny_model_cfg, tiny_model_path):
    """PEFT's NoMatchingPeftModuleError surfaced as a traceback from deep in the trainer's constructor."""
    from langmix.errors import UserInputError
    from langmix.models import load_model
    from langmix.train import _check_lora_targets

    model = load_model(tiny_model_cfg, tiny_model_path)
    for fine in ("all-linear", ["q_proj", "v_proj"], ["self_attn.q_proj"], r".*\.mlp\.up_proj"):
        _check_lora_targets(model, fine)
    with pytest.raises(UserInputError, match=r"'nonexistent_proj' matches no module of the model \(its linear "
                                             r"layers: .*q_proj"):
        _check_lora_targets(model, ["q_proj", "nonexistent_proj"])
    with pytest.raises(UserInputError, match="matches no module"):
        _check_lora_targets(model, r".*\.attention_head")


@pytest.mark.parametrize("ratio, steps", [(0.0, 0), (0.05, 5), (0.5, 50), (0.99, 99), (1.0, 100)])
def test_warmup_ratio_is_a_share_of_the_steps_for_every_allowed_value(ratio, steps):
    """transformers reads a `warmup_steps` of 1 or more as a step count: a ratio of 1.0 warmed up for 1 step, not
    all of them. The other ratios give the steps they gave before (pinned here: their runs keep their keys)."""
    from pathlib import Path

    from langmix.train import sft_config

    args = sft_config(TrainingConfig(warmup_ratio=ratio, max_steps=100), 0, Path("x"), False)
    assert args.get_warmup_steps(100) == steps


def test_the_trainer_warms_up_over_every_step_at_ratio_1(tiny_model_cfg, tiny_model_path, tmp_path):
    """The trainer's own scheduler: warming up over both steps, step 2 trains at half the rate (a 1-step warmup
    reached the full rate there)."""
    cfg = TrainingConfig(max_steps=2, batch_size=4, logging_steps=1, max_length=256, warmup_ratio=1.0,
                         learning_rate=1e-3)
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
    state = json.loads((tmp_path / "final" / "trainer_state.json").read_text())
    rates = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert rates == pytest.approx([0.0, 5e-4])


def test_a_run_shorter_than_logging_steps_still_records_its_loss(tiny_model_cfg, tiny_model_path, tmp_path):
    """8 steps at the default logging_steps (10): nothing was logged, so train_summary.json held train_loss null
    over 0 steps. The last step is always logged; a run whose last step is a logging step logs it once."""
    cfg = TrainingConfig(max_steps=8, batch_size=4, save_steps=100, max_length=256)
    assert cfg.logging_steps == 10
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path / "short", show_progress=False)
    summary = json.loads((tmp_path / "short" / "train_summary.json").read_text())
    assert summary["train_loss_steps"] == 8 and summary["train_loss"] is not None
    assert summary["first_loss"] == summary["last_loss"] == summary["train_loss"]
    state = json.loads((tmp_path / "short" / "final" / "trainer_state.json").read_text())
    assert [(h["step"], h["loss_steps"]) for h in state["log_history"] if "loss" in h] == [(8, 8)]
    # logged every 3 steps over 8: steps 3 and 6, and the last, 8 (2 steps), each once
    train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg.model_copy(update={"logging_steps": 3}), 0,
          tmp_path / "every3", show_progress=False)
    state = json.loads((tmp_path / "every3" / "final" / "trainer_state.json").read_text())
    assert [(h["step"], h["loss_steps"]) for h in state["log_history"] if "loss" in h] == [(3, 3), (6, 3), (8, 2)]
    summary = json.loads((tmp_path / "every3" / "train_summary.json").read_text())
    assert summary["train_loss_steps"] == 8


def _multi_turn(i: int, filler: int = 40):
    """A two-turn conversation whose second user turn is long: the final answer comes last, far from the first."""
    from langmix.records import Example

    return Example(id=f"turns{i}", source_id=f"turns{i}", task="math", language="en", reference={"answer": 4},
                   messages=[{"role": "user", "content": "What is 1+1?"},
                             {"role": "assistant", "content": "The answer is 2."},
                             {"role": "user", "content": "Now " + "and more words " * filler + "what is 2+2?"},
                             {"role": "assistant", "content": "2 + 2 = 4. The answer is 4."}])


def _turn_spans(tok, example) -> list[tuple[int, int]]:
    """[start, end) of each run of trained tokens in the example's whole encoding."""
    mask = assistant_masks(tok, [example], None)[0]
    starts = [k for k, bit in enumerate(mask) if bit and (k == 0 or not mask[k - 1])]
    return [(a, next((k for k in range(a, len(mask)) if not mask[k]), len(mask))) for a in starts]


@pytest.mark.parametrize("packing", [True, False])
def test_a_final_answer_cut_away_behind_a_long_user_turn_is_refused(tiny_model_cfg, tiny_model_path, tmp_path,
                                                                    packing):
    """max_length cut a multi-turn example inside a later user turn: its final answer (what a scorer reads) was
    gone, yet its first answer was trained on, so it trained on the first answer only without a word."""
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    turns = [_multi_turn(i) for i in range(3)]
    (_, first_end), (last_start, _) = _turn_spans(tok, turns[0])
    cut = (first_end + last_start) // 2  # inside the long user turn
    assert first_end < cut < last_start
    cfg = TrainingConfig(max_steps=1, max_length=cut, packing=packing, save_steps=100)
    with pytest.raises(LabelMaskError, match=f"3 of {len(EXAMPLES) + 3} training examples lose their last "
                                             f"assistant turn entirely at training.max_length={cut} \\(turns0, "
                                             f"turns1, turns2\\): they would train on earlier turns only"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES + turns, cfg, 0, tmp_path, show_progress=False)
    assert not (tmp_path / "final").exists()


@pytest.mark.parametrize("where, expected", [("first_answer_end", "gone"), ("inside_first_answer", "gone"),
                                             ("inside_final_answer", "cut"), ("final_answer_end", None)])
def test_cut_answers_are_judged_by_the_final_turn_of_multi_turn_examples(tiny_model_cfg, tiny_model_path, caplog,
                                                                         where, expected):
    """Whatever the last kept token is (an earlier answer's, a user turn's), the final turn decides: cut away
    entirely an error, cut inside a warning, whole (ending exactly at max_length) neither."""
    import logging

    from langmix.train import check_cut_answers

    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    turns = [_multi_turn(0, filler=2)]
    (first_start, first_end), (last_start, last_end) = _turn_spans(tok, turns[0])
    cut = {"first_answer_end": first_end, "inside_first_answer": first_start + 2,
           "inside_final_answer": last_start + 2, "final_answer_end": last_end}[where]
    length = min(cut, len(assistant_masks(tok, turns, None)[0]))
    with caplog.at_level(logging.WARNING, logger="langmix.train"):
        if expected == "gone":
            with pytest.raises(LabelMaskError, match=f"1 of 1 training examples lose their last assistant turn "
                                                     f"entirely at training.max_length={cut} \\(turns0\\)"):
                check_cut_answers(tok, turns, [length], cut)
        else:
            check_cut_answers(tok, turns, [length], cut)
    warned = f"1 of 1 training examples are cut at training.max_length={cut} inside their answer (turns0)"
    assert (warned in caplog.text) == (expected == "cut")


@pytest.mark.parametrize("targets", [["q_proj", "lm_head"], "lm_head", r".*(q_proj|lm_head)"])
def test_a_lora_adapter_on_the_output_layer_is_refused_with_the_config(targets):
    """TRL refuses an adapter on lm_head (it would never be trained) with a traceback from its constructor."""
    from langmix.config import lora_targets

    assert lora_targets(targets, "lm_head") and not lora_targets("all-linear", "lm_head")
    with pytest.raises(ValueError, match="targets lm_head, the output layer: a LoRA adapter there is never trained"):
        TrainingConfig(method="lora", lora_target_modules=targets)
    TrainingConfig(method="full", lora_target_modules=targets)  # not used: not refused
    TrainingConfig(method="lora", lora_target_modules=["q_proj", "v_proj"])


def test_a_lora_adapter_on_an_output_layer_named_otherwise_is_refused_before_training():
    """The rule is TRL's: the model's output embeddings, whatever the module is called (older GPT-NeoX: embed_out)."""
    from langmix.errors import UserInputError
    from langmix.train import _check_lora_targets

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.ModuleDict({"query_key_value": torch.nn.Linear(4, 12)})
            self.embed_out = torch.nn.Linear(4, 8)

        def get_output_embeddings(self):
            return self.embed_out

    model = Model()
    _check_lora_targets(model, ["query_key_value"])
    for targets in (["query_key_value", "embed_out"], r".*embed_out"):
        with pytest.raises(UserInputError, match="targets embed_out, the model's output layer"):
            _check_lora_targets(model, targets)


@pytest.mark.parametrize("packing", [True, False])
def test_training_a_lora_head_ends_with_one_line_not_trl_traceback(tiny_model_cfg, tiny_model_path, tmp_path,
                                                                  packing):
    from langmix.errors import UserInputError

    cfg = TrainingConfig.model_construct(**{**TrainingConfig(method="lora", max_steps=1, packing=packing,
                                                             max_length=256).model_dump(),
                                            "lora_target_modules": ["q_proj", "lm_head"]})  # past the config check
    with pytest.raises(UserInputError, match="targets lm_head, the model's output layer"):
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, tmp_path, show_progress=False)
