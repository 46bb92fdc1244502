"""An AST checker for function calls in the BFCL sense, with multilingual improvements.

Model output is parsed, never executed: JSON (`{"name": ..., "arguments": {...}}` or a list of them) or Python
call syntax (`f(a=1)` / `[f(a=1), g(b=2)]`) through `ast`, accepting only literal argument values.
Expected calls follow BFCL's possible-answer shape: `[{func_name: {param: [acceptable values]}}]`, where `""`
among the acceptable values marks an optional parameter. Checks: function name; required parameters present; no
unexpected parameters; types (an int is accepted for a float); values after normalisation (NFKC, full-width
punctuation, case, spaces and BFCL's punctuation set); parallel calls matched order-free; irrelevance (no call).
A mismatch where the model wrote the argument in the user's language instead of the canonical value is flagged
as `wrong_language_argument`.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_OUTPUT_CHARS = 20_000
_STRIP = re.compile(r"[\s,./\-_*^'\"]+")

TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,), "int": (int,), "float": (int, float), "number": (int, float),
    "string": (str,), "str": (str,), "boolean": (bool,), "bool": (bool,), "array": (list, tuple),
    "list": (list, tuple), "tuple": (list, tuple), "dict": (dict,), "object": (dict,),
}


@dataclass
class CallVerdict:
    correct: bool
    reason: str  # ok, no_call, irrelevance_violated, parse_error, too_long, wrong_count, wrong_name,
    #              missing_required, unexpected_arg, wrong_type, wrong_value
    calls: list[dict[str, Any]] | None = None
    name_correct: bool = False
    args_correct: bool = False
    wrong_language_args: list[str] = field(default_factory=list)
    detail: str = ""


# ---------------------------------------------------------------- parsing


def _py_call(node: ast.AST) -> dict[str, Any]:
    if not isinstance(node, ast.Call) or node.args:
        raise ValueError("expected a call with keyword arguments only")
    name = ast.unparse(node.func)
    return {"name": name, "arguments": {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}}


def _normalise_json_calls(obj: Any) -> list[dict[str, Any]]:
    items = obj if isinstance(obj, list) else [obj]
    calls = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            args = item.get("arguments", item.get("parameters", {}))
            if isinstance(args, str):
                args = json.loads(args)
            if not isinstance(args, dict):
                raise ValueError("arguments must be an object")
            calls.append({"name": item["name"], "arguments": args})
        elif isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict):
            name, args = next(iter(item.items()))  # BFCL's {func: {arg: value}} shape
            calls.append({"name": name, "arguments": args})
        else:
            raise ValueError("not a function call object")
    return calls


def parse_calls(output: str) -> tuple[list[dict[str, Any]] | None, str]:
    """Calls in `output` as [{"name", "arguments"}], [] for plain text, or None with a reason code."""
    if len(output) > MAX_OUTPUT_CHARS:
        return None, "too_long"
    text = unicodedata.normalize("NFKC", output).strip()
    text = re.sub(r"^```(?:json|python)?\s*|\s*```$", "", text)
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if starts:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[min(starts):])
            return _normalise_json_calls(obj), "ok"
        except (ValueError, TypeError):
            pass
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ([], "no_call") if not starts and "(" not in text else (None, "parse_error")
    try:
        nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        return [_py_call(n) for n in nodes], "ok"
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return ([], "no_call") if isinstance(tree, (ast.Name, ast.Constant, ast.BinOp, ast.Compare)) \
            else (None, "parse_error")


# ---------------------------------------------------------------- matching


def normalise_string(value: str) -> str:
    return _STRIP.sub("", unicodedata.normalize("NFKC", value)).casefold()


def _type_ok(value: Any, type_name: str | None) -> bool:
    allowed = TYPES.get((type_name or "").lower())
    if allowed is None:
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def values_match(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want)
    if isinstance(want, str) and isinstance(got, str):
        return normalise_string(got) == normalise_string(want)
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(got) == len(want) and all(values_match(g, w) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return _dict_matches(got, want)
    return got == want


def _dict_matches(got: dict, want: dict) -> bool:
    """`want` maps keys to acceptable-value lists (BFCL nested dicts) or to plain values."""
    for key, acceptable in want.items():
        options = acceptable if isinstance(acceptable, list) else [acceptable]
        if key not in got:
            if "" not in options:
                return False
            continue
        if not any(values_match(got[key], o) for o in options if o != ""):
            return False
    return set(got) <= set(want)


def _acceptable(got: Any, options: list[Any]) -> bool:
    return any(values_match(got, o) for o in options if o != "")


def check_one(call: dict[str, Any], name: str, expected_args: dict[str, list[Any]],
              schema: dict[str, Any] | None, is_wrong_language: Callable[[str, str], bool] | None = None
              ) -> CallVerdict:
    """Check one parsed call against one expected call (and the function's schema, when known)."""
    if normalise_name(call["name"]) != normalise_name(name):
        return CallVerdict(False, "wrong_name", detail=f"{call['name']} != {name}")
    args = call["arguments"]
    params = (schema or {}).get("parameters", {})
    properties = params.get("properties", {})
    required = params.get("required", [k for k, v in expected_args.items() if "" not in v])
    missing = [k for k in required if k not in args]
    if missing:
        return CallVerdict(False, "missing_required", name_correct=True, detail=f"missing {missing}")
    unexpected = [k for k in args if k not in expected_args and (not properties or k not in properties)]
    if unexpected or (properties and any(k not in properties for k in args)):
        return CallVerdict(False, "unexpected_arg", name_correct=True, detail=f"unexpected {unexpected}")
    for key, value in args.items():
        options = expected_args.get(key, [])
        if value is None and None in options:
            continue
        if isinstance(value, str) and any(isinstance(o, str) and o and values_match(value, o) for o in options):
            continue  # BFCL's variable references: x="data['sales']" where x is an array
        if key in properties and not _type_ok(value, properties[key].get("type")):
            return CallVerdict(False, "wrong_type", name_correct=True, detail=f"{key}={value!r}")
    wrong_lang = []
    for key, value in args.items():
        # BFCL writes an empty array value as an empty acceptable list (`"p": []`); read it as `[[]]`.
        options = expected_args.get(key, [""]) or [[]]
        if options == [""] or _acceptable(value, options):
            continue
        canonical = next((o for o in options if o != ""), None)
        if is_wrong_language and isinstance(value, str) and isinstance(canonical, str) \
                and is_wrong_language(value, canonical):
            wrong_lang.append(key)
        return CallVerdict(False, "wrong_value", name_correct=True, wrong_language_args=wrong_lang,
                           detail=f"{key}={value!r}")
    return CallVerdict(True, "ok", name_correct=True, args_correct=True)


def normalise_name(name: str) -> str:
    return name.strip().replace("_", ".").casefold()


def check(output: str, expected: list[dict[str, dict[str, list[Any]]]], functions: list[dict[str, Any]],
          is_wrong_language: Callable[[str, str], bool] | None = None) -> CallVerdict:
    """Score a model output against BFCL-style possible answers; `expected == []` means no call is wanted."""
    calls, reason = parse_calls(output)
    if calls is None:
        return CallVerdict(False, reason)
    if not expected:
        return CallVerdict(not calls, "ok" if not calls else "irrelevance_violated", calls)
    if not calls:
        return CallVerdict(False, "no_call", calls)
    if len(calls) != len(expected):
        return CallVerdict(False, "wrong_count", calls, detail=f"{len(calls)} calls, expected {len(expected)}")
    schemas = {normalise_name(f["name"]): f for f in functions}
    # order-free: match each expected call to a distinct output call (backtracking over a few calls)
    verdicts: list[CallVerdict] = []

    def assign(i: int, used: frozenset[int]) -> bool:
        if i == len(expected):
            return True
        (name, args), = expected[i].items()
        for j, call in enumerate(calls):
            if j in used:
                continue
            v = check_one(call, name, args, schemas.get(normalise_name(name)), is_wrong_language)
            verdicts.append(v)
            if v.correct and assign(i + 1, used | {j}):
                return True
        return False

    if assign(0, frozenset()):
        return CallVerdict(True, "ok", calls, name_correct=True, args_correct=True)
    failures = [v for v in verdicts if not v.correct]  # a partial match is still a failure as a whole
    best = max(failures, key=lambda v: (v.name_correct, len(v.wrong_language_args)))
    best.calls = calls
    return best


def gold_call(expected: list[dict[str, dict[str, list[Any]]]], functions: list[dict[str, Any]] | None = None
              ) -> list[dict[str, Any]]:
    """A call list the possible answers accept: the first acceptable value of each parameter (resolved
    recursively inside nested dicts and lists); optional parameters that accept "" (omitted) are left out."""
    required = {normalise_name(f["name"]): set(f.get("parameters", {}).get("required", [])) for f in functions or []}

    def first(options: list[Any]) -> Any:
        return resolve(next(o for o in options if o != ""))

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: first(v) if isinstance(v, list) else resolve(v) for k, v in value.items()
                    if not (isinstance(v, list) and "" in v)}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    out = []
    for item in expected:
        (name, args), = item.items()
        needed = required.get(normalise_name(name), set())
        out.append({"name": name, "arguments": {
            k: first(v or [[]]) for k, v in args.items() if ("" not in v or k in needed) and v != [""]}})
    return out
