import json

import pytest

from langmix.evaluate.api import parse_call, score_call

EXPECTED = {"name": "set_alarm", "arguments": {"hour": 7, "minute": 30}}


@pytest.mark.parametrize("output,correct,name_correct,reason", [
    (json.dumps(EXPECTED), True, True, "ok"),
    ('{"name": "set_alarm", "arguments": {"minute": 30.0, "hour": 7}} trailing text', True, True, "ok"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 31}}', False, True, "wrong_arguments"),
    ('{"name": "set_alarm", "arguments": {"hour": 7}}', False, True, "wrong_arguments"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minute": 30, "x": 1}}', False, True, "wrong_arguments"),
    ('{"name": "get_time", "arguments": {"hour": 7, "minute": 30}}', False, False, "wrong_name"),
    ('{"name": "set_alarm", "arguments": {"hour": 7, "minu', False, False, "invalid_json"),
    ("I cannot do that.", False, False, "no_json"),
    ('{"function": "set_alarm"}', False, False, "not_a_call"),
    ('{"name": "set_alarm", "arguments": "hour=7"}', False, False, "not_a_call"),
    ('__import__("os").system("echo hi")', False, False, "no_json"),
    ('{"name": "set_alarm", "arguments": {"hour": true, "minute": 30}}', False, True, "wrong_arguments"),
])
def test_score_table(output, correct, name_correct, reason):
    verdict = score_call(output, EXPECTED)
    assert (verdict.correct, verdict.name_correct, verdict.reason) == (correct, name_correct, reason)


def test_strings_compare_case_and_space_insensitively():
    want = {"name": "get_time", "arguments": {"city": "Tokyo"}}
    assert score_call('{"name": "get_time", "arguments": {"city": " tokyo "}}', want).correct


def test_huge_output():
    assert parse_call("{" * 100_000) == (None, "too_long")
