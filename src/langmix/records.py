"""The few records every stage shares. Plain, model-agnostic, JSON-serialisable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Example(BaseModel):
    """One task example in one language, as OpenAI-style `messages` (the last message is the target).

    `source_id` is shared by all translations of the same item, so lineage survives translation and mixing.
    `reference` holds what the scorer compares against: {"answer": number} for math,
    {"call": {"name": ..., "arguments": {...}}} for api. `reference["shots"]`, where set, counts the few-shot
    exemplars, (user, assistant) pairs of turns that open `messages` (after a system message): the prompt, not
    the item (the lineage check leaves them out of what identifies it).
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    source_id: str
    task: str
    language: str
    messages: list[dict[str, str]]
    tools: list[dict[str, Any]] | None = None
    reference: dict[str, Any] = Field(default_factory=dict)

    def prompt_messages(self) -> list[dict[str, str]]:
        """The conversation up to (not including) the final assistant turn."""
        return self.messages[:-1] if self.messages and self.messages[-1]["role"] == "assistant" else self.messages

    def last_user_turn(self) -> str | None:
        """The last user message's text (the question), or None without one."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else None

    def exemplar_messages(self) -> int:
        """How many messages after the system message are few-shot exemplars: 2 x `reference["shots"]` (0 where
        unset). A ValueError where that is not a whole number of (user, assistant) pairs before a user message."""
        if "shots" not in self.reference:
            return 0
        shots = self.reference["shots"]
        start = 1 if self.messages and self.messages[0]["role"] == "system" else 0
        roles = [m["role"] for m in self.messages[start:]]
        if (not isinstance(shots, int) or isinstance(shots, bool) or shots < 0 or "user" not in roles[2 * shots:]
                or roles[:2 * shots] != ["user", "assistant"] * shots):
            raise ValueError(f"reference.shots {shots!r} is not the number of (user, assistant) exemplar pairs "
                             "that open its messages before the question")
        return 2 * shots

    def target(self) -> str:
        return self.messages[-1]["content"] if self.messages[-1]["role"] == "assistant" else ""


_EXAMPLE_FIELDS = ("id", "source_id", "task", "language", "messages", "tools", "reference")
_set_attribute = object.__setattr__


def trusted_example(id: str, source_id: str, task: str, language: str, messages: list[dict[str, str]],
                    tools: list[dict[str, Any]] | None, reference: dict[str, Any]) -> Example:
    """An Example from values that are valid by construction, every field given, without pydantic's validation:
    what `Example.model_construct` makes (a test compares them), in ~1.7 us rather than ~4 (a 1M-example synthetic
    mixture makes a million)."""
    example = Example.__new__(Example)
    _set_attribute(example, "__dict__", {"id": id, "source_id": source_id, "task": task, "language": language,
                                         "messages": messages, "tools": tools, "reference": reference})
    _set_attribute(example, "__pydantic_fields_set__", set(_EXAMPLE_FIELDS))
    _set_attribute(example, "__pydantic_extra__", None)
    _set_attribute(example, "__pydantic_private__", None)
    return example


class ResultRow(BaseModel):
    """One number: a metric for one (run, task, language). The results table is a list of these."""

    run_hash: str
    study: str
    model: str
    mixture: str
    design: str
    train_languages: str  # comma-separated, "" for the base model
    task: str
    language: str
    resource: str
    metric: str
    value: float
    n: int
    seed: int
    scorer_digest: str = ""  # the scorer that judged the run (`langmix.tasks.scorer_digest`); "" where unknown


class ItemRow(BaseModel):
    """One evaluated item: the verdict of one (eval run, item, language). Paired statistics need these.

    `correct` is the task's headline verdict (math: strict accuracy; api: full call correct). `train_hash` is ""
    for a base-model evaluation; `n_train_languages` is 0 there. `response_language` is None where it was not
    judged. `model_params` is the base model's parameter count (for capacity analyses). Tables read from runs
    written before `scorer_digest` existed hold it as null.
    """

    study: str
    eval_hash: str
    train_hash: str
    model: str
    model_params: int
    mixture: str
    design: str
    train_languages: str  # comma-separated, "" for the base model
    n_train_languages: int
    task: str
    headline_metric: str
    language: str
    resource: str
    seed: int
    item_id: str
    source_id: str
    correct: bool
    correct_strict: bool | None = None
    correct_flexible: bool | None = None
    reason: str = ""
    response_language: str | None = None
    scorer_digest: str = ""  # the scorer that judged the item (`langmix.tasks.scorer_digest`); "" where unknown
