"""The trainer callbacks `langmix.train` runs with, and the training loss its summary reports: each optimizer step
timed as model compute, a guard that stops a run whose claim was lost, logged losses that say how many steps they
average (a checkpoint's step and the last step are always logged), a study's progress, and no checkpoint after the
last step.
"""

from __future__ import annotations

import time
from typing import Callable

from transformers import TrainerCallback

from langmix.timing import COMPUTE_SECONDS


class StepClock(TrainerCallback):
    """Counts the time of each optimizer step (forward, backward, update) as model compute."""

    def __init__(self) -> None:
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        COMPUTE_SECONDS["train"] += time.perf_counter() - self._start


class Guard(TrainerCallback):
    """Calls `check` after every optimizer step, before the trainer logs or saves: it raises to stop the run (a
    study run whose claim another process took over must not write another checkpoint)."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check

    def on_step_end(self, args, state, control, **kwargs):
        self.check()


class LossSteps(TrainerCallback):
    """Records in each logged loss how many steps it averages (`loss_steps`): the first log after resuming
    covers only the steps since the checkpoint, wherever the previous log was (`mean_logged_loss` weights by it)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = state.global_step  # what the trainer averages its next logged loss from

    def on_log(self, args, state, control, logs=None, **kwargs):
        entry = state.log_history[-1] if state.log_history else {}
        if "loss" in entry and entry.get("step") == state.global_step:
            entry["loss_steps"] = state.global_step - self._last
            self._last = state.global_step


class LogLastStep(TrainerCallback):
    """The last step is always logged (once; the trainer's own interval may log it too): a run shorter than
    `logging_steps`, or ending between two logs, has the loss of its last steps in the log history, so its
    summary's `train_loss` covers them (it was null over 0 steps for a run of fewer steps than `logging_steps`).
    A resumed run logs its last step as an uninterrupted one does.

    A checkpoint's step is logged too (the trainer logs before it saves): the loss summed since the previous log
    lives only in memory, so a run stopped after a checkpoint between two logs lost those steps' loss and its
    `train_loss` covered fewer steps than it trained."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps or control.should_save:
            control.should_log = True


class StepProgress(TrainerCallback):
    """Reports a training run's progress to callables (a study's progress display) instead of the trainer's own
    bars: `start(total, done)` once the trainer knows its optimizer steps (`done`: the step a resumed run starts
    from, its checkpoint's), `advance(1)` after each step, `loss(value)` as each loss is logged. Per step it adds
    a call, never a device synchronisation (the logged loss is the trainer's own, taken at logging steps only)."""

    def __init__(self, start: Callable[[int, int], None], advance: Callable[[int], None],
                 loss: Callable[[float], None] = lambda value: None) -> None:
        self.start, self.advance, self.loss = start, advance, loss

    def on_train_begin(self, args, state, control, **kwargs):
        self.start(state.max_steps, state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.advance(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss(float(logs["loss"]))


class NoCheckpointAtEnd(TrainerCallback):
    """No checkpoint after the last step: the final weights are saved next (and the trainer state with them), so a
    checkpoint there (weights, optimizer state) could only resume a finished run. A third of the checkpoint time of
    the quickstart, whose runs save every 40 of 120 steps."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False


def mean_logged_loss(history: list[dict]) -> float | None:
    """The mean training loss over the steps the log history covers: each logged loss is the mean of `loss_steps`
    steps (by default those since the previous log) and is weighted by how many. The history is restored on
    resume, so a run stopped and resumed reports what an uninterrupted one does (the trainer's own
    `training_loss` averages only the steps of the last `train()` call)."""
    steps = logged_loss_steps(history)
    return sum(e["loss"] * n for e, n in zip(history, steps)) / sum(steps) if sum(steps) else None


def logged_loss_steps(history: list[dict]) -> list[int]:
    """How many steps each logged loss averages: its `loss_steps`, else the steps since the previous log."""
    previous = [0] + [entry["step"] for entry in history[:-1]]
    return [entry.get("loss_steps", entry["step"] - prev) for entry, prev in zip(history, previous)]
