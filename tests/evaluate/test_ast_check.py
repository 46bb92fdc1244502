import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langmix.data.api_data import load_bfcl
from langmix.evaluate.ast_check import check, gold_call, parse_calls
from tests.shared_data import shared

FN = [{"name": "set_alarm", "parameters": {"type": "dict", "required": ["hour", "minute"], "properties": {
    "hour": {"type": "integer"}, "minute": {"type": "integer"}, "label": {"type": "string"},
    "volume": {"type": "float"}}}}]
WANT = [{"set_alarm": {"hour": [7], "minute": [30], "label": ["wake up", ""], "volume": [0.5, ""]}}]


@pytest.mark.parametrize("output,correct,reason", [
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}', True, "ok"),
    ('set_alarm(hour=7, minute=30, label="Wake-Up")', True, "ok"),
    ('[set_alarm(hour=7, minute=30)]', True, "ok"),
    ('```json\n{"name": "set_alarm", "arguments": {"minute": 30, "hour": 7}}\n```', True, "ok"),
    ('{"set_alarm": {"hour": 7, "minute": 30}}', True, "ok"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "volume": 1}}', False, "wrong_value"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "volume": 0.5}}', True, "ok"),
    ('｛"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "label": "ｗａｋｅ　ｕｐ"}｝', True, "ok"),
    ('{"name": "set_alarm", "arguments": {"hour": 7}}', False, "missing_required"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "snooze": 5}}', False, "unexpected_arg"),
    ('{"name": "set_alarm", "arguments": {"hour": "7", "minute": 30}}', False, "wrong_type"),
    ('{"name": "set_alarm", "arguments": {"hour": true, "minute": 30}}', False, "wrong_type"),
    ('{"name": "set_alarm", "arguments": {"hour": 8, "minute": 30}}', False, "wrong_value"),
    ('{"name": "get_time", "arguments": {"hour": 7, "minute": 30}}', False, "wrong_name"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minu', False, "parse_error"),
    ("I can't help with that.", False, "no_call"),
    ('__import__("os").system("touch /tmp/pwned")', False, "parse_error"),
    ('set_alarm(hour=__import__("os").getpid(), minute=30)', False, "parse_error"),
    ('set_alarm(7, 30)', False, "parse_error"),
    ("{" * 30000, False, "too_long"),
    ('[{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}, '
     '{"name": "set_alarm", "arguments": {"hour": 8, "minute": 0}}]', False, "wrong_count"),
])
def test_table(output, correct, reason):
    verdict = check(output, WANT, FN)
    assert (verdict.correct, verdict.reason) == (correct, reason), verdict


def test_parallel_calls_are_order_free():
    want = [{"f": {"x": [1]}}, {"f": {"x": [2]}}]
    fn = [{"name": "f", "parameters": {"required": ["x"], "properties": {"x": {"type": "integer"}}}}]
    assert check('[f(x=2), f(x=1)]', want, fn).correct
    assert not check('[f(x=2), f(x=2)]', want, fn).correct


def test_irrelevance():
    assert check("There is no function for that.", [], FN).correct
    verdict = check('set_alarm(hour=7, minute=30)', [], FN)
    assert not verdict.correct and verdict.reason == "irrelevance_violated"


def test_wrong_language_argument_is_flagged():
    fn = [{"name": "get_weather", "parameters": {"required": ["unit"], "properties": {"unit": {"type": "string"}}}}]
    want = [{"get_weather": {"unit": ["celsius"]}}]
    verdict = check('{"name": "get_weather", "arguments": {"unit": "摂氏"}}', want, fn,
                    lambda got, canonical: got == "摂氏")
    assert verdict.reason == "wrong_value" and verdict.wrong_language_args == ["unit"] and verdict.name_correct


@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text):
    verdict = check(text, WANT, FN)
    assert isinstance(verdict.correct, bool) and verdict.reason


CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]


def _perturbations(call: dict, schema: dict) -> list[tuple[str, list]]:
    """(kind, perturbed call list) for one gold call."""
    props = schema.get("parameters", {}).get("properties", {})
    required = schema.get("parameters", {}).get("required", [])
    out = [("wrong_name", {**call, "name": call["name"] + "_v2"}),
           ("extra_arg", {**call, "arguments": {**call["arguments"], "zz_unexpected": 1}})]
    present_required = [k for k in required if k in call["arguments"]]
    if present_required:
        args = dict(call["arguments"])
        del args[present_required[0]]
        out.append(("missing_required", {**call, "arguments": args}))
    for key, value in call["arguments"].items():
        kind = props.get(key, {}).get("type")
        wrong = {"integer": "seven", "float": "x", "number": "x", "string": [1], "boolean": "yes",
                 "array": 3, "dict": 3, "tuple": 3}.get(kind)
        if wrong is not None:
            out.append(("wrong_type", {**call, "arguments": {**call["arguments"], key: wrong}}))
            break
    for key, value in call["arguments"].items():
        changed = (not value if isinstance(value, bool) else value + 1000 if isinstance(value, (int, float))
                   else value + " zzq" if isinstance(value, str) else None)
        if changed is not None:
            out.append(("wrong_value", {**call, "arguments": {**call["arguments"], key: changed}}))
            break
    return out


def test_bfcl_gold_calls_pass_and_perturbations_fail():
    directory = shared("bfcl")
    passed = total = 0
    rejected: dict[str, list[int]] = {}
    for category in CATEGORIES + ["irrelevance"]:
        for ex in load_bfcl(directory, category):
            gold = gold_call(ex.reference["calls"], ex.tools)
            total += 1
            verdict = check(json.dumps(gold), ex.reference["calls"], ex.tools)
            assert verdict.correct, (ex.id, verdict.reason, verdict.detail)
            passed += 1
            schemas = {f["name"]: f for f in ex.tools}
            for i, call in enumerate(gold):
                for kind, bad in _perturbations(call, schemas.get(call["name"], {})):
                    calls = copy.deepcopy(gold)
                    calls[i] = bad
                    result = check(json.dumps(calls), ex.reference["calls"], ex.tools)
                    rejected.setdefault(kind, [0, 0])
                    rejected[kind][0] += not result.correct
                    rejected[kind][1] += 1
                    assert not result.correct, (ex.id, kind, bad)
    print(f"gold calls passing: {passed}/{total}; perturbations rejected: {rejected}")
    assert total >= 1400 and set(rejected) == {"wrong_name", "extra_arg", "missing_required", "wrong_type",
                                               "wrong_value"}


def test_python_syntax_parsing_uses_literals_only():
    calls, reason = parse_calls('f(a=[1, 2], b={"k": "v"}, c=None, d=-3.5)')
    assert reason == "ok" and calls == [{"name": "f", "arguments": {"a": [1, 2], "b": {"k": "v"}, "c": None,
                                                                     "d": -3.5}}]
