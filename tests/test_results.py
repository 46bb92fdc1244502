"""The results store's files: predictions written exactly as json.dumps writes each record."""

import json
import math
from enum import Enum

from langmix.results import write_predictions

class Color(str, Enum):
    RED = "red"


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"city": {"type": "string"}}}}]


def test_predictions_equal_json_dumps_with_shared_containers(tmp_path):
    calls = [{"name": "get_weather", "arguments": {"city": "Tōkyō"}}]
    records = [
        {"id": "a", "output": "¿Qué tiempo hace?", "reference": {"functions": TOOLS, "possible_answer": []}},
        {"id": "b", "output": "", "parsed_calls": calls, "reference": {"functions": TOOLS, "request": "x\n\"y\""}},
        {"id": "c", "output": "nan", "score": math.nan, "reference": {1: "int key", "functions": TOOLS}},
        {"id": "d", "reference": {}, "empty": [], "nested": {"deeper": {"functions": TOOLS}}, "none": None},
        {"id": "e", Color.RED: 1, "reference": {Color.RED: [1.5, True], "t": (1, 2)}},  # str-enum keys, a tuple
        {"id": "f", "output": "Die Antwort ist 7.", "correct": True, "reference": 7, "x": 1.5, "e": [], "d": {}},
        {"id": "g", "reference": {"answer": 3, "phrase": "答えは"}, "calls": ({"a": 1},)},  # no list or dict in it
    ]
    path = write_predictions(records, tmp_path / "predictions.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps(r, ensure_ascii=False) for r in records]
    TOOLS[0]["function"]["name"] = "renamed"  # a changed object is serialised anew in the next file
    again = write_predictions(records, tmp_path / "again.jsonl").read_text(encoding="utf-8").splitlines()
    assert again == [json.dumps(r, ensure_ascii=False) for r in records] and "renamed" in again[0]
