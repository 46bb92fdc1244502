import json

import pytest

from langmix.data.api_data import load_apibank, load_apibank_schemas, load_bfcl
from langmix.data.files import DataFormatError
from tests.shared_data import shared


def test_bfcl_categories():
    counts = {c: len(load_bfcl(shared("bfcl"), c)) for c in ("simple_python", "multiple", "parallel",
                                                             "parallel_multiple", "irrelevance")}
    assert counts == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200,
                      "irrelevance": 240}
    ex = load_bfcl(shared("bfcl"), "parallel", limit=1)[0]
    assert ex.reference["calls"][0] == {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}}
    assert ex.messages[0]["role"] == "system" and "spotify.play" in ex.messages[0]["content"]
    assert load_bfcl(shared("bfcl"), "irrelevance", limit=1)[0].reference["calls"] == []


def test_bfcl_malformed(tmp_path):
    (tmp_path / "possible_answer").mkdir()
    (tmp_path / "BFCL_v4_simple.json").write_text('{"id": "a", "question": [[{"role": "user", "content": "x"}]], '
                                                  '"function": [{"name": "f"}]}\n{"id": "b"}\n')
    (tmp_path / "possible_answer" / "BFCL_v4_simple.json").write_text(
        '{"id": "a", "ground_truth": [{"f": {}}]}\n{"id": "b", "ground_truth": []}\n')
    with pytest.raises(DataFormatError, match=r"BFCL_v4_simple.json:2: expected 'question'"):
        load_bfcl(tmp_path, "simple")
    with pytest.raises(DataFormatError, match="no such BFCL category"):
        load_bfcl(tmp_path, "parallel")


def test_apibank_level1():
    schemas = load_apibank_schemas(shared("api-bank", "all_apis.csv"))
    assert len(schemas) == 101 and schemas["AddAlarm"]["parameters"]["required"] == ["token", "time"]
    examples = load_apibank(shared("api-bank", "lv1-lv2-samples", "level-1-given-desc"), schemas)
    # 389 calls; 253 name arguments all_apis.csv does not declare, or miss required ones (e.g. AddMeeting's
    # meeting_topic vs the file's content): left out, counted in a warning
    assert len(examples) == 136
    first = [e for e in examples if e.source_id.startswith("apibank-AddAlarm-level-1-1")]
    assert [list(e.reference["calls"][0]) for e in first] == [["GetUserToken"], ["AddAlarm"]]
    call = json.loads(first[1].target())
    assert call == {"name": "AddAlarm", "arguments": {"token": "z9x8c7v6b5n4m3q2w1", "time": "2021-10-14 08:00:00"}}
    assert any("API result" in m["content"] for m in first[1].messages)  # earlier calls stay in the dialogue


def test_apibank_malformed(tmp_path):
    schemas = {"AddAlarm": {"name": "AddAlarm"}}
    (tmp_path / "d.jsonl").write_text('{"role": "User", "text": "hi"}\n{"role": "Robot", "text": "?"}\n')
    with pytest.raises(DataFormatError, match=r"d.jsonl:2: unknown role 'Robot'"):
        load_apibank(tmp_path, schemas)
    (tmp_path / "d.jsonl").write_text('{"role": "API", "api_name": "Nope", "param_dict": {}}\n')
    with pytest.raises(DataFormatError, match=r"d.jsonl:1: API 'Nope' is not in the schema file"):
        load_apibank(tmp_path, schemas)


def test_apibank_calls_that_contradict_their_schema_are_left_out_and_counted(tmp_path, caplog):
    schemas = {"AddAlarm": {"name": "AddAlarm", "parameters": {"type": "object", "required": ["time"], "properties": {
        "time": {"type": "str"}, "label": {"type": "str"}}}}, "Odd": {"name": "Odd", "schema_error": "unreadable"}}
    calls = [{"time": "8:00"}, {"time": "9:00", "label": "x"}, {"when": "9:00"}, {"time": "7:00", "snooze": 5}, {}]
    turns = [{"role": "User", "text": "alarms"}]
    turns += [{"role": "API", "api_name": "AddAlarm", "param_dict": c, "result": {"output": "ok"}} for c in calls]
    turns += [{"role": "API", "api_name": "Odd", "param_dict": {"a": 1}}]  # unreadable schema: kept
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(t) + "\n" for t in turns))
    examples = load_apibank(tmp_path, schemas)
    assert [json.loads(e.target())["arguments"] for e in examples] == [calls[0], calls[1], {"a": 1}]
    assert "3 API calls are left out: their arguments contradict the schema file" in caplog.text
    assert "AddAlarm: 3" in caplog.text
    assert sum("API result" in m["content"] for m in examples[-1].messages) == 5  # left-out calls stay in the dialogue
