"""Agreement of langmix's AST checker with BFCL's own checker, on BFCL's published data (../shared/data/bfcl).

Cases: for every item of five BFCL categories, the gold call list (the first acceptable value of each parameter
in the possible answer, nested dicts and lists of dicts resolved, `""`-optional parameters left out) and its
perturbations, each written as Python call syntax and as JSON; for every irrelevance item, refusals that contain
brackets and a call. The verdict BFCL's checker (gorilla `bfcl_eval/eval_checker/ast_eval/ast_checker.py`) gives
each case follows from its rules, written next to each perturbation below. `multilingual` mode must differ from
BFCL exactly on the cases of its named leniencies, and on a number in a string whose decimal point or minus sign
was dropped (BFCL's standardisation removes both; multilingual mode refuses the changed value).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import string
from collections import Counter
from typing import Any, Iterator

import pytest

from langmix.data.api_data import load_bfcl
from langmix.evaluate.ast_check import check, gold_call
from tests.shared_data import shared

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]
FULLWIDTH = str.maketrans(string.ascii_letters, "".join(chr(ord(c) + 0xFEE0) for c in string.ascii_letters))
LENIENCY_KINDS = {"fullwidth", "tab_newline", "quoted", "name_case", "name_separator", "eszett"}
STRICTER_KINDS = {"decimal_point_dropped", "minus_dropped"}  # BFCL accepts them; multilingual mode does not
NUMBER_MARKS = {"decimal_point_dropped": re.compile(r"(?<=\d)\.(?=\d)"),
                "minus_dropped": re.compile(r"(?<![^\W_])-(?=\d)")}


class Expr(str):
    """A Python expression written into the Python form as is (`10*1`), and as its value into JSON."""

    def __new__(cls, source: str, value: Any) -> "Expr":
        obj = super().__new__(cls, source)
        obj.value = value
        return obj


def _py(value: Any) -> str:
    if isinstance(value, Expr):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(_py(v) + ", " for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Expr):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def as_python(calls: list[dict[str, Any]]) -> str:
    body = ", ".join(f"{c['name']}({', '.join(f'{k}={_py(v)}' for k, v in c['arguments'].items())})" for c in calls)
    return f"[{body}]" if len(calls) > 1 else body


def as_json(calls: list[dict[str, Any]]) -> str:
    plain = [{"name": c["name"], "arguments": _plain(c["arguments"])} for c in calls]
    return json.dumps(plain if len(plain) > 1 else plain[0], ensure_ascii=False)


def _with(call: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**call, "arguments": {**call["arguments"], key: value}}


def _first(answer: dict[str, list[Any]], key: str) -> Any:
    return next((o for o in answer.get(key, []) if o != ""), None)


def perturbations(call: dict[str, Any], schema: dict[str, Any], answer: dict[str, list[Any]]
                  ) -> Iterator[tuple[str, dict[str, Any], bool, str]]:
    """(kind, perturbed call, BFCL's verdict, formats) for one gold call; formats "pj" = Python and JSON."""
    props = schema.get("parameters", {}).get("properties", {})
    required = schema.get("parameters", {}).get("required", [])
    args = call["arguments"]
    yield "wrong_name", {**call, "name": call["name"] + "_v2"}, False, "pj"  # name must match exactly
    yield "extra_arg", _with(call, "zz_unexpected", 1), False, "pj"  # not in the schema: unexpected_param
    present = [k for k in required if k in args]
    if present:  # a required parameter left out: missing_required
        yield "missing_required", {**call, "arguments": {k: v for k, v in args.items() if k != present[0]}}, \
            False, "pj"
    listed = [k for k in args if k not in required and "" not in answer.get(k, [""])]
    if listed:  # optional in the schema, listed without "" in the answer: BFCL's missing_optional (class 1)
        yield "omit_listed_optional", {**call, "arguments": {k: v for k, v in args.items() if k != listed[0]}}, \
            False, "pj"
    for key, value in args.items():
        kind = props.get(key, {}).get("type")
        wrong = {"integer": "seven", "float": "x", "string": [1], "boolean": "yes", "array": 3, "dict": 3,
                 "tuple": 3}.get(kind)
        if wrong is not None and not isinstance(_first(answer, key), type(wrong)):  # not a variable reference
            yield "wrong_type", _with(call, key, wrong), False, "pj"
            break
    for key, value in args.items():
        changed = (not value if isinstance(value, bool) else value + 1000 if isinstance(value, (int, float))
                   else value + " zzq" if isinstance(value, str) else None)
        if changed is not None:
            yield "wrong_value", _with(call, key, changed), False, "pj"
            break
    for key, value in args.items():
        kind, items = props.get(key, {}).get("type"), props.get(key, {}).get("items", {}).get("type")
        if kind == "float" and isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            yield "int_for_float", _with(call, key, int(value)), True, "pj"  # BFCL converts int -> float
        if kind == "integer" and type(value) is int:  # BFCL evaluates arithmetic arguments
            yield "arithmetic", _with(call, key, Expr(f"{value - 1} + 1", value)), True, "p"
        if kind == "array" and isinstance(value, list) and value:
            if items == "float" and all(isinstance(v, float) and v.is_integer() for v in value) \
                    and not any(o == "" for o in answer[key]):  # element types are checked (class 4)
                yield "int_elements", _with(call, key, [int(v) for v in value]), False, "pj"
            yield "tuple_for_array", _with(call, key, tuple(value)), False, "p"  # tuple is not list (class 4)
        if kind == "string" and isinstance(value, str) and any(c.isalpha() for c in value) \
                and isinstance(_first(answer, key), str) and not value.isupper():
            yield "upper_case", _with(call, key, value.upper()), True, "pj"  # BFCL lower-cases strings
            if value.isascii():
                yield "fullwidth", _with(call, key, value.translate(FULLWIDTH)), False, "pj"  # no NFKC in BFCL
            if " " in value:
                yield "tab_newline", _with(call, key, value.replace(" ", "\t", 1).replace(" ", "\n", 1)), \
                    False, "pj"  # BFCL strips only spaces and , . / - _ * ^
            if not any(isinstance(o, str) and ("'" in o or '"' in o) for o in answer[key]):
                yield "quoted", _with(call, key, f'"{value}"'), False, "pj"  # double quotes are kept by BFCL
            if "ss" in value and "ß" not in value:
                yield "eszett", _with(call, key, value.replace("ss", "ß", 1)), False, "pj"  # lower(), not casefold
        for dropped, mark in NUMBER_MARKS.items():  # BFCL removes every `.` and `-` of a string
            if isinstance(value, str) and mark.search(value):
                yield dropped, _with(call, key, mark.sub("", value, count=1)), True, "pj"
    if call["name"] != call["name"].upper():
        yield "name_case", {**call, "name": call["name"].upper()}, False, "pj"
    if "." in call["name"]:
        yield "name_separator", {**call, "name": call["name"].replace(".", "_")}, False, "pj"


def first_of_each_kind(call: dict[str, Any], schema: dict[str, Any], answer: dict[str, list[Any]]
                       ) -> Iterator[tuple[str, dict[str, Any], bool, str]]:
    """`perturbations`, keeping the first of each kind per call (on the first parameter it applies to)."""
    seen: set[str] = set()
    for case in perturbations(call, schema, answer):
        if case[0] not in seen:
            seen.add(case[0])
            yield case


def cases() -> Iterator[tuple[str, str, str, str, bool, Any]]:
    """(item id, kind, format, output, BFCL's verdict, example) over the BFCL data."""
    directory = shared("bfcl")
    for category in CATEGORIES:
        for ex in load_bfcl(directory, category):
            gold = gold_call(ex.reference["calls"], ex.tools)
            for fmt, render in (("python", as_python), ("json", as_json)):
                yield ex.id, "gold", fmt, render(gold), True, ex
            schemas = {f["name"]: f for f in ex.tools}
            for i, call in enumerate(gold):
                (_, answer), = ex.reference["calls"][i].items()
                for kind, bad, verdict, formats in first_of_each_kind(call, schemas.get(call["name"], {}), answer):
                    calls = copy.deepcopy(gold)
                    calls[i] = bad
                    if "p" in formats:
                        yield ex.id, kind, "python", as_python(calls), verdict, ex
                    if "j" in formats:
                        yield ex.id, kind, "json", as_json(calls), verdict, ex
    for ex in load_bfcl(directory, "irrelevance"):
        fn = ex.tools[0]
        yield ex.id, "refusal_brackets", "text", (f"I can't do that: {fn['name']}() only covers "
                                                  f"{fn.get('description', '')[:40]} [no match] {{sorry}}."), True, ex
        yield ex.id, "refusal_bracket_first", "text", "(No suitable function.) None of the tools fits.", True, ex
        call = {"name": fn["name"], "arguments": {k: 1 for k in fn["parameters"].get("required", [])}}
        yield ex.id, "call", "python", as_python([call]), False, ex
        yield ex.id, "call", "json", as_json([call]), False, ex


@functools.cache
def all_cases() -> list[tuple[str, str, str, str, bool, Any]]:
    return list(cases())


def agreement(check_fn, mode: str | None, every: int = 1) -> tuple[Counter, Counter]:
    """(agreeing cases, all cases) per kind, where a case agrees when `check_fn`'s verdict equals the expected
    one: BFCL's, or for `multilingual` BFCL's flipped to correct on the leniency kinds and to wrong on the stricter
    ones."""
    agree, total = Counter(), Counter()
    items: dict[str, int] = {}
    for item, kind, _, output, verdict, ex in all_cases():
        if items.setdefault(item, len(items)) % every:
            continue
        expected = (verdict or (mode == "multilingual" and kind in LENIENCY_KINDS)) \
            and not (mode == "multilingual" and kind in STRICTER_KINDS)
        kwargs = {"mode": mode} if mode else {}
        total[kind] += 1
        agree[kind] += check_fn(output, ex.reference["calls"], ex.tools, **kwargs).correct == expected
    return agree, total


@pytest.fixture(scope="module")
def bfcl_mode() -> tuple[Counter, Counter]:
    return agreement(check, "bfcl")


def test_bfcl_mode_agrees_with_bfcl(bfcl_mode):
    agree, total = bfcl_mode
    disagree = {k: total[k] - agree[k] for k in total if agree[k] != total[k]}
    print(f"bfcl mode: {sum(agree.values())}/{sum(total.values())} agree; per kind {dict(total)}")
    assert sum(total.values()) == 41_270
    assert disagree == {}  # every remaining decoder difference (call_parse's docstring) is outside these cases
    assert sum(agree.values()) / sum(total.values()) >= 0.995


def test_case_counts_per_class(bfcl_mode):
    _, total = bfcl_mode
    assert {k: total[k] for k in ("gold", "omit_listed_optional", "int_elements", "tuple_for_array",
                                  "arithmetic", "refusal_brackets", "call", *STRICTER_KINDS)} == {
        "gold": 2516, "omit_listed_optional": 1142, "int_elements": 12, "tuple_for_array": 275,
        "arithmetic": 955, "refusal_brackets": 240, "call": 480,
        "decimal_point_dropped": 14, "minus_dropped": 2}  # a geolocation and six URLs, Python and JSON


def test_multilingual_mode_differs_exactly_by_its_leniencies():
    agree, total = agreement(check, "multilingual", every=3)  # a third of the items keeps the suite fast
    assert {k: total[k] - agree[k] for k in total if agree[k] != total[k]} == {}
    assert (total["gold"], total["fullwidth"], total["tab_newline"], total["name_separator"]) == (840, 868, 466, 654)
