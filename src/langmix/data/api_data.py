"""API-calling data: BFCL v4 categories and API-Bank level-1/2 dialogues, as tool-use `Example`s.

The one internal record for tool use is an `Example` with `task="api"`, the function schemas in `tools`, the
conversation in `messages`, and the expected calls in BFCL's possible-answer shape in
`reference["calls"]`: `[{func_name: {param: [acceptable values]}}]` (`""` marks an optional parameter; an empty
list means no call is wanted).
"""

from __future__ import annotations

import ast
import csv
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from langmix.data.files import DataFormatError, iter_jsonl, iter_lines, require_dir
from langmix.records import Example

log = logging.getLogger(__name__)

TOOL_SYSTEM = ("You can call these functions. Reply with the call as JSON, "
               '{"name": ..., "arguments": {...}}, or a JSON list for several calls; reply in words if none fits.')

TOOL_RESULT_PREFIX = "API result: "  # a tool's output, written as a user turn (API-Bank's convention)
# What a tool result starts with (`is_tool_result`): a turn starting otherwise is natural language, checked at once.
TOOL_RESULT_STARTS = (TOOL_RESULT_PREFIX.strip(), "{", "[")


def is_tool_result(text: str) -> bool:
    """A user turn carrying a tool's output (API-Bank writes them as `API result: {...}`) or other bare JSON:
    data, not natural language. The translator leaves it as it is (its keys and values would be translated); the
    lineage check leaves it out of what identifies an example (the same result can follow different requests)."""
    body = text.strip()
    if not body.startswith(TOOL_RESULT_STARTS):
        return False
    if body.startswith(TOOL_RESULT_PREFIX.strip()):
        return True
    try:  # starts with { or [: a tool result where it is JSON
        json.loads(body)
        return True
    except ValueError:
        return False


def tool_system_prompt(tools: list[dict[str, Any]]) -> str:
    return TOOL_SYSTEM + "\n" + json.dumps(tools, ensure_ascii=False)


def _bfcl_id(path: Path, lineno: int, row: dict[str, Any], first: dict[str, int]) -> str:
    """A BFCL row's id, refused (naming the file and line) when missing or given on an earlier line of the file."""
    rid = row.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid.strip():
        raise DataFormatError(path, lineno, "no 'id' (every BFCL row needs one: it pairs a question with its "
                              "possible answer)")
    if rid in first:
        raise DataFormatError(path, lineno, f"id {rid!r} is given twice (first at line {first[rid]}): one of "
                              "them would take the other's place")
    first[rid] = lineno
    return rid


def load_bfcl(directory: str | Path, category: str, limit: int | None = None) -> list[Example]:
    """`BFCL_v4_<category>.json` with `possible_answer/BFCL_v4_<category>.json` (none for irrelevance).

    A row without an id, or an id given twice (questions or answers), is a DataFormatError naming the line.
    langmix scores single-turn calls: multi-turn questions (more than one turn in `question`) are left out,
    counted in a warning (and a file of nothing else is refused)."""
    directory = require_dir(directory)
    qpath = directory / f"BFCL_v4_{category}.json"
    apath = directory / "possible_answer" / f"BFCL_v4_{category}.json"
    if not qpath.exists():
        raise DataFormatError(qpath, None, "no such BFCL category file")
    answers: dict[str, Any] = {}
    if apath.exists():
        first_answer: dict[str, int] = {}
        for lineno, row in iter_jsonl(apath):
            rid = _bfcl_id(apath, lineno, row, first_answer)
            if not isinstance(row.get("ground_truth"), list):
                raise DataFormatError(apath, lineno, "expected 'id' and a 'ground_truth' list")
            answers[rid] = row["ground_truth"]
    elif "irrelevance" not in category:
        raise DataFormatError(apath, None, f"missing possible answers for category {category!r}")
    out = []
    first_question: dict[str, int] = {}
    multi_turn = 0
    for lineno, row in iter_jsonl(qpath):
        rid = _bfcl_id(qpath, lineno, row, first_question)
        try:
            turns, functions = row["question"], row["function"]
            messages = [dict(m) for m in turns[0]]
            assert all(m["role"] in ("user", "system", "assistant") for m in messages) and functions
        except (KeyError, IndexError, TypeError, AssertionError):
            raise DataFormatError(qpath, lineno, "expected 'question' [[{role, content}...]] and 'function'") \
                from None
        if len(turns) > 1:
            multi_turn += 1
            continue
        if "irrelevance" not in category and rid not in answers:
            raise DataFormatError(qpath, lineno, f"no possible answer for {rid}")
        calls = answers.get(rid, [])
        out.append(Example(id=f"bfcl-{rid}-en", source_id=f"bfcl-{rid}", task="api", language="en",
                           messages=[{"role": "system", "content": tool_system_prompt(functions)}, *messages],
                           tools=functions, reference={"calls": calls, "category": category}))
        if limit and len(out) >= limit:
            break
    if multi_turn:
        log.warning("%s: %d multi-turn questions skipped: langmix scores single-turn calls", qpath, multi_turn)
    if not out:
        raise DataFormatError(qpath, None, f"no single-turn examples in file ({multi_turn} multi-turn questions "
                              "skipped: langmix scores single-turn calls)" if multi_turn else "no examples in file")
    return out


def load_apibank_schemas(csv_path: str | Path) -> dict[str, dict[str, Any]]:
    """API-Bank's `all_apis.csv` -> {api name: JSON-schema'd function}. `api_info` is read as literals only."""
    csv_path = Path(csv_path)
    schemas = {}
    linenos: list[int] = []

    def lines() -> Iterator[str]:  # decoded line by line, so bad bytes name their line; a quoted field may span lines
        for lineno, text in iter_lines(csv_path):
            linenos.append(lineno)
            yield text

    for row in csv.DictReader(lines()):
        lineno = linenos[-1]
        name, info = row.get("类名") or row.get("class_name"), row.get("api_info", "")
        if not name:
            raise DataFormatError(csv_path, lineno, "row has no API class name")
        fields: dict[str, Any] = {}
        try:
            for node in ast.parse(info).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    fields[node.targets[0].id] = ast.literal_eval(node.value)
        except (SyntaxError, ValueError) as exc:
            # Kept (dialogues may call it) but flagged: its parameters are unknown, so the type checks skip it.
            log.warning("%s:%d: api_info of %s is not literal assignments (%s); schema has no parameters",
                        csv_path, lineno, name, exc)
            fields = {"description": "", "schema_error": str(exc)}
        params = fields.get("input_parameters") or {}
        if not isinstance(params, dict):  # e.g. `{None}`: an API without parameters
            params = {}
        if "schema_error" in fields:
            schemas[name] = {"name": name, "description": "", "schema_error": fields["schema_error"]}
            continue
        schemas[name] = {"name": name, "description": fields.get("description", ""), "parameters": {
            "type": "object", "required": list(params),
            "properties": {k: {"type": v.get("type", "str"), "description": v.get("description", "")}
                           for k, v in params.items()}}}
    return schemas


def load_apibank(directory: str | Path, schemas: dict[str, dict[str, Any]], limit: int | None = None
                 ) -> list[Example]:
    """API-Bank dialogues (`*.jsonl`: User/AI/API turns): one example per API call, with the dialogue so far.

    Earlier API calls and their results become assistant/tool turns of the conversation; the expected call is
    the API turn's `api_name` with its `param_dict`.
    """
    directory = require_dir(directory)
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise DataFormatError(directory, None, "no API-Bank *.jsonl dialogues")
    out: list[Example] = []
    contradicted: Counter = Counter()
    for path in files:
        history: list[dict[str, str]] = []
        for n, (lineno, turn) in enumerate(iter_jsonl(path)):
            role = turn.get("role")
            if role in ("User", "AI"):
                if not isinstance(turn.get("text"), str):
                    raise DataFormatError(path, lineno, f"{role} turn without 'text'")
                history.append({"role": "user" if role == "User" else "assistant", "content": turn["text"]})
            elif role == "API":
                name, params = turn.get("api_name"), turn.get("param_dict")
                if not isinstance(name, str) or not isinstance(params, dict):
                    raise DataFormatError(path, lineno, "API turn needs 'api_name' and a 'param_dict' object")
                if name not in schemas:
                    raise DataFormatError(path, lineno, f"API {name!r} is not in the schema file")
                tools = [schemas[name]]
                source = f"apibank-{path.stem}-{n}"
                call = json.dumps({"name": name, "arguments": params}, ensure_ascii=False)
                if _contradicts(schemas[name], params):
                    contradicted[name] += 1
                else:
                    out.append(Example(
                        id=f"{source}-en", source_id=source, task="api", language="en",
                        messages=[{"role": "system", "content": tool_system_prompt(tools)}, *history,
                                  {"role": "assistant", "content": call}],
                        tools=tools, reference={"calls": [{name: {k: [v] for k, v in params.items()}}]}))
                result = turn.get("result", {})
                history += [{"role": "assistant", "content": call},
                            {"role": "user", "content": TOOL_RESULT_PREFIX + json.dumps(
                                result.get("output") if isinstance(result, dict) else result, ensure_ascii=False)}]
                if limit and len(out) >= limit:
                    break
            else:
                raise DataFormatError(path, lineno, f"unknown role {role!r} (expected User, AI or API)")
        if limit and len(out) >= limit:
            break
    if contradicted:
        log.warning("%s: %d API calls are left out: their arguments contradict the schema file (an argument it does "
                    "not declare, or a required one missing), so a correct answer could not score as correct (%s)",
                    directory, sum(contradicted.values()),
                    ", ".join(f"{k}: {v}" for k, v in contradicted.most_common(8)))
    return out


def _contradicts(schema: dict[str, Any], arguments: dict[str, Any]) -> bool:
    """Whether a call's arguments disagree with its schema: an argument the schema does not declare, or a required
    one missing. A schema whose parameters could not be read decides nothing."""
    if "parameters" not in schema:
        return False
    declared = schema["parameters"].get("properties", {})
    required = schema["parameters"].get("required", [])
    return bool(set(arguments) - set(declared)) or bool(set(required) - set(arguments))
