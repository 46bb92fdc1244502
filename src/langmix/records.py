"""The few records every stage shares. Plain, model-agnostic, JSON-serialisable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Example(BaseModel):
    """One task example in one language, as OpenAI-style `messages` (the last message is the target).

    `source_id` is shared by all translations of the same item, so lineage survives translation and mixing.
    `reference` holds what the scorer compares against: {"answer": number} for math,
    {"call": {"name": ..., "arguments": {...}}} for api.
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

    def target(self) -> str:
        return self.messages[-1]["content"] if self.messages[-1]["role"] == "assistant" else ""


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
