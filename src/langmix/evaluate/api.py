"""Scoring of API calls: the output is parsed as JSON (never executed) and compared by name and arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class ApiVerdict:
    call: dict[str, Any] | None
    correct: bool
    name_correct: bool
    reason: str  # "ok", "too_long", "no_json", "invalid_json", "not_a_call", "wrong_name", "wrong_arguments"


def parse_call(output: str) -> tuple[dict[str, Any] | None, str]:
    """The first JSON object in `output` that looks like {"name": str, "arguments": dict}, or a reason code."""
    if len(output) > MAX_OUTPUT_CHARS:
        return None, "too_long"
    start = output.find("{")
    if start < 0:
        return None, "no_json"
    try:
        obj, _ = json.JSONDecoder().raw_decode(output[start:])
    except json.JSONDecodeError:
        return None, "invalid_json"
    if not (isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("arguments"), dict)):
        return None, "not_a_call"
    return obj, "ok"


def _same_value(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want)
    if isinstance(want, str) and isinstance(got, str):
        return got.strip().casefold() == want.strip().casefold()
    return got == want


def score_call(output: str, expected: dict[str, Any]) -> ApiVerdict:
    call, reason = parse_call(output)
    if call is None:
        return ApiVerdict(None, False, False, reason)
    if call["name"] != expected["name"]:
        return ApiVerdict(call, False, False, "wrong_name")
    got, want = call["arguments"], expected["arguments"]
    same = set(got) == set(want) and all(_same_value(got[k], want[k]) for k in want)
    return ApiVerdict(call, same, True, "ok" if same else "wrong_arguments")
