"""Parsing model output into function calls, never executing it.

Two surface forms: JSON (`{"name": ..., "arguments": {...}}`, BFCL's `{"function": ..., "parameters": ...}` or
`{func: {arg: value}}`, OpenAI's `tool_calls` entries or an assistant message holding them, or a list of them;
also one call per `<tool_call>` element, Qwen/Hermes style) and Python call syntax (`f(a=1)`, `[f(a=1), g(b=2)]`)
read through `ast`. JSON is tried only where the output *is* JSON (it starts with `{` or `[` and decodes whole),
so a Python call whose dict argument has a "name" key stays a Python call. `find_call` says where, in text that
`parse` refused, a call attempt begins after leading text (an echo of the prompt, "Sure! Here is the call:"), so
that a failed call is told from no call, and the checker's multilingual mode can read the call from there.

Python argument values are resolved the way BFCL's decoder resolves them (gorilla, `bfcl_eval/model_handler/
utils.py`, `resolve_ast_by_type`), but without `eval`: literals; tuples stay tuples; a bare name or a subscript
is a variable reference and becomes its source text (`x=data` -> "data"); arithmetic over numeric literals
(`base=10*1`, `2**3`, `-0.5`) and string concatenation are folded by a small evaluator with size limits.
Deliberate differences from BFCL's decoder (each refuses where BFCL would produce a value):
- a call or lambda inside an argument (`x=f(1)`) is a parse error; BFCL turns a call without keywords into its
  source text and `eval`s a lambda's body;
- a unary operator other than `-`/`+` on a number is a parse error; BFCL negates the operand of any unary
  operator (`not True` -> -1, `+5` -> -5);
- positional arguments are a parse error; BFCL drops them silently (the call then usually misses a required
  parameter, the same verdict).
Outputs nested deeper than `MAX_DEPTH` are parse errors, never a RecursionError.
"""

from __future__ import annotations

import ast
import json
import operator
import re
import unicodedata
from collections.abc import Collection
from typing import Any, Callable

MAX_OUTPUT_CHARS = 20_000
MAX_DEPTH = 64  # nesting of brackets in an output or a decoded value; deeper is a parse error
_FENCE = re.compile(r"^```(?:json|python|py|tool_code|tool_calls|tool_call|javascript|js)?\s*|\s*```$", re.IGNORECASE)
# Qwen / Hermes-style tool calls: one JSON call per <tool_call> element
_TOOL_CALL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL | re.IGNORECASE)
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


class ParseError(ValueError):
    """The output is not a call list this parser accepts; the message says why."""


def depth(text: str) -> int:
    """The deepest bracket nesting in `text` (strings not excluded: a cheap, linear upper bound)."""
    opening = text.count("(") + text.count("[") + text.count("{")
    if opening <= MAX_DEPTH:
        return opening
    level = deepest = 0
    for ch in text:
        if ch in "([{":
            level += 1
            deepest = max(deepest, level)
        elif ch in ")]}":
            level = max(0, level - 1)
    return deepest


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fold(op: ast.operator, left: Any, right: Any) -> Any:
    """Arithmetic over literals, bounded: BFCL `eval`s these (`base=10*1`); we compute them without `eval`."""
    if isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not (_number(left) and _number(right)) or type(op) not in _BINOPS:
        raise ParseError("only arithmetic over numbers (and string +) is folded")
    if isinstance(op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
        raise ParseError("power too large to fold")
    try:
        result = _BINOPS[type(op)](left, right)
    except (ArithmeticError, ValueError) as exc:
        raise ParseError(f"arithmetic fails: {exc}") from None
    if isinstance(result, complex) or (isinstance(result, int) and result.bit_length() > 256):
        raise ParseError("arithmetic result out of range")
    return result


def value_of(node: ast.AST, level: int = 0) -> Any:
    """A Python argument value, resolved as BFCL's decoder does (see the module docstring), never executed."""
    if level > MAX_DEPTH:
        raise ParseError("argument nested too deeply")
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = value_of(node.operand, level + 1)
        if not _number(operand):
            raise ParseError("unary sign on a non-number")
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _fold(node.op, value_of(node.left, level + 1), value_of(node.right, level + 1))
    if isinstance(node, ast.List):
        return [value_of(v, level + 1) for v in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(value_of(v, level + 1) for v in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ParseError("dict unpacking in an argument")
        out = {}
        for k, v in zip(node.keys, node.values):
            key = value_of(k, level + 1)
            if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                raise ParseError("unhashable dict key")
            out[key] = value_of(v, level + 1)
        return out
    if isinstance(node, (ast.Name, ast.Subscript)):
        return ast.unparse(node)  # a variable reference, as BFCL keeps it
    raise ParseError(f"unsupported argument expression {type(node).__name__}")


def _python_call(node: ast.AST) -> dict[str, Any]:
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise ParseError("expected a function call")
    if node.args or any(kw.arg is None for kw in node.keywords):
        raise ParseError("positional or ** arguments")
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        raise ParseError("function name is not a dotted name")
    parts.append(func.id)
    return {"name": ".".join(reversed(parts)), "arguments": {kw.arg: value_of(kw.value) for kw in node.keywords}}


def _json_calls(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        obj = obj["tool_calls"]  # an OpenAI assistant message
    items = obj if isinstance(obj, list) else [obj]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            raise ParseError("a JSON call must be an object")
        if isinstance(item.get("function"), dict) and isinstance(item["function"].get("name"), str):
            item = item["function"]  # an OpenAI tool call: {"type": "function", "function": {name, arguments}}
        name = item.get("name", item.get("function"))
        if isinstance(name, str):
            args = item.get("arguments", item.get("parameters", {}))
            if isinstance(args, str):
                if depth(args) > MAX_DEPTH:
                    raise ParseError("arguments nested too deeply")
                try:
                    args = json.loads(args)
                except (ValueError, RecursionError):
                    raise ParseError("arguments string is not JSON") from None
        elif len(item) == 1 and isinstance(next(iter(item.values())), dict):
            name, args = next(iter(item.items()))  # BFCL's {func: {arg: value}} shape
        else:
            raise ParseError("not a function call object")
        if not isinstance(args, dict):
            raise ParseError("arguments must be an object")
        calls.append({"name": name, "arguments": args})
    return calls


def parse(text: str) -> list[dict[str, Any]]:
    """Calls in `text` as [{"name", "arguments"}]; raises ParseError where `text` is no call list."""
    if depth(text) > MAX_DEPTH:
        raise ParseError(f"nested deeper than {MAX_DEPTH}")
    text = _FENCE.sub("", text.strip()).strip()
    tagged = _TOOL_CALL_TAG.findall(text)
    if tagged:  # <tool_call> elements, each one JSON call; text around them (a preamble) is not a call
        calls = []
        for body in tagged:
            try:
                calls += _json_calls(json.loads(_FENCE.sub("", body).strip()))
            except (ValueError, RecursionError):
                raise ParseError("a <tool_call> element is not a JSON call") from None
        return calls
    if text[:1] in ("{", "["):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            pass  # not JSON: perhaps a Python call list `[f(a=1)]`
        else:
            return _json_calls(obj)
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        raise ParseError("neither JSON nor Python call syntax") from None
    nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    try:
        return [_python_call(n) for n in nodes]
    except RecursionError:
        raise ParseError("nested too deeply") from None


def normal_name(name: str) -> str:
    """A function name as the multilingual checker compares it (NFKC, casefolded, `_` and `.` alike)."""
    return unicodedata.normalize("NFKC", name).strip().replace("_", ".").casefold()


def _names_pattern(names: Collection[str]) -> str | None:
    """A regex alternation matching any of `names`, case-insensitively, `_` and `.` interchangeable."""
    spelled = sorted({"".join("[_.]" if ch in "_." else re.escape(ch) for ch in n.strip())
                      for n in names if isinstance(n, str) and n.strip()}, key=len, reverse=True)
    return "(?i:" + "|".join(spelled) + ")" if spelled else None


def _closing(text: str, start: int) -> int | None:
    """Index of the bracket closing the one at `start`, or None where it never closes. Quotes are not followed
    (prose has apostrophes: "get_weather (it's for weather)"), so a bracket inside a string counts too."""
    level = 0
    for i in range(start, len(text)):
        if text[i] in "([{":
            level += 1
        elif text[i] in ")]}":
            level -= 1
            if level == 0:
                return i
    return None


def _call_shaped(obj: Any, known: Callable[[str], bool]) -> bool:
    """Whether decoded JSON is a call in one of `_json_calls`'s shapes, and not a function's schema (a prompt's
    tool list echoed back has "name", "description" and "parameters" with "properties")."""
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        obj = obj["tool_calls"]
    items = obj if isinstance(obj, list) else [obj]
    if not items:
        return False
    for item in items:
        if not isinstance(item, dict):
            return False
        if isinstance(item.get("function"), dict):
            item = item["function"]
        name = item.get("name", item.get("function"))
        if isinstance(name, str):
            params = item.get("parameters")
            if "description" in item or (isinstance(params, dict) and "properties" in params and "type" in params):
                return False
            if not ("arguments" in item or "parameters" in item or known(name)):
                return False
        elif not (len(item) == 1 and isinstance(next(iter(item.values())), dict) and known(next(iter(item)))):
            return False
    return True


# Output that starts like a call: JSON or a Python list (`{"`, `[{`, `[[`, `[f(`), or `f(` (no space before the
# parenthesis: "Sorry (no tool fits)" is prose).
_STARTS_STRUCTURED = re.compile(r"[\[{]\s*(?:[\"'{\[]|[\w.]+\s*\()")
_STARTS_CALL = re.compile(r"[^\W\d][\w.]*\(")
_FENCE_OPEN = re.compile(r"```[\w-]*[ \t]*\n?")
_KEYWORD_ARGUMENT = re.compile(r"\s*[^\W\d]\w*\s*=(?!=)")
_JSON_OPEN = re.compile(r"[\[{]")
# A JSON call that does not decode (cut off, or malformed): its opening names the function with a string and goes
# on to its arguments or ends there; the prompt's template `{"name": ..., "arguments": {...}}` names none.
_JSON_CALL_OPENING = (r'\[?\s*\{\s*(?:"(?:name|function)"\s*:\s*"[^"\n]*"\s*(?:,\s*"(?:arguments|parameters)"|$)'
                      r'|"tool_calls"\s*:')


def _python_mention(text: str, paren: int) -> int | None:
    """Where the Python call whose argument list opens at `paren` ends, where it is mentioned in prose rather than
    written as a call; None for a call: one with keyword arguments, one cut off, or one followed on its line by
    nothing but the expression's continuation ("get_weather() only covers the weather" mentions a function)."""
    if _KEYWORD_ARGUMENT.match(text, paren + 1):
        return None
    close = _closing(text, paren)
    if close is None:
        return None
    rest = text[close + 1:].split("\n", 1)[0]
    return None if not rest.strip() or re.match(r"\.\w|[(\[]|\s*[,\]]", rest) else close


def find_call(text: str, names: Collection[str] = ()) -> int | None:
    """Where the call `text` attempts begins (0 for an output that starts like one), or None for text that attempts
    none; for text that `parse` refused, so that a failed call is a parse error and not a decision not to call.

    An attempt is, at the start (after whitespace and a fence opening), JSON or a Python list or a call `f(`;
    later, after leading text, a fenced block that starts so, decoded JSON in a call's shape (`_call_shaped`; not a
    function's schema echoed from the prompt), a JSON call cut off (`_JSON_CALL_OPENING`), or a Python call of one
    of `names` (the item's functions) or of any name with keyword arguments, unless prose follows it on its line.
    The first attempt decides: the caller reads the text from there, which must end with the call. Plain prose
    that names a function ("use get_weather for that") attempts none."""
    if "<tool_call>" in text.lower():
        return 0
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    fence = _FENCE_OPEN.match(stripped) if stripped.startswith("```") else None
    first = lead + (fence.end() if fence else 0)
    if _STARTS_STRUCTURED.match(text, first) or (_STARTS_CALL.match(text, first) and
                                                 _python_mention(text, text.index("(", first)) is None):
        return 0
    pattern = _names_pattern(names)
    known_names = {normal_name(n) for n in names if isinstance(n, str)}
    known = (lambda name: normal_name(name) in known_names)
    opening = re.compile(_JSON_CALL_OPENING + (f'|"{pattern}"\\s*:\\s*\\{{' if pattern else "") + ")")
    python = re.compile(r"(?<![\w.])(?:\[\s*)?(?:" + (f"(?:{pattern})\\s*\\(|" if pattern else "")
                        + r"[^\W\d]\w*(?:\.[^\W\d]\w*)*\((?=" + _KEYWORD_ARGUMENT.pattern + "))")
    candidates = sorted({(m.start(), "fence") for m in re.finditer("```", text)}
                        | {(m.start(), "json") for m in _JSON_OPEN.finditer(text)}
                        | {(m.start(), "python") for m in python.finditer(text)})
    decoder = json.JSONDecoder()
    decodable = depth(text) <= MAX_DEPTH  # deeper JSON is a parse error anyway: no decoder run at each bracket
    skip_to = 0
    for start, kind in candidates:
        if start < skip_to or start < first:
            continue
        if kind == "fence":
            body = _FENCE_OPEN.match(text, start).end()
            if _STARTS_STRUCTURED.match(text, body) or _STARTS_CALL.match(text, body):
                return start
        elif kind == "python":
            close = _python_mention(text, text.index("(", start))
            if close is None:
                return start
            skip_to = close  # a call inside a mentioned one is mentioned too
        else:
            try:
                if not decodable:
                    raise ValueError("nested too deeply")
                obj, end = decoder.raw_decode(text, start)
            except (ValueError, RecursionError):
                if opening.match(text, start):
                    return start
                continue
            if _call_shaped(obj, known):
                return start
            skip_to = end  # not a call (a schema list, a number list): nothing inside it is one either
    return None
