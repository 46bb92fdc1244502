"""The results store's files: predictions written exactly as json.dumps writes each record; SQL over the views
reads them and nothing else."""

import json
import math
from enum import Enum

import duckdb
import pytest

from langmix.records import ResultRow
from langmix.results import query, write_predictions, write_rows

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


def test_query_reads_the_views_and_writes_nowhere(tmp_path):
    """`query` ran any SQL on a connection with DuckDB's full file access: EXPLAIN ANALYZE COPY overwrote a run's
    file. The views are materialised and the connection sealed, so DuckDB refuses every path, including the runs'."""
    run = tmp_path / "run"
    run.mkdir()
    row = dict(run_hash="r1", study="s", model="m", mixture="en", design="english_only", train_languages="en",
               task="math", language="sw", resource="low", metric="accuracy", n=10, seed=0)
    written = write_rows([ResultRow(value=0.25, **row), ResultRow(value=0.75, **{**row, "language": "en"})],
                         run / "results.parquet")
    before = written.read_bytes()
    (tmp_path / "other.csv").write_text("a\nhidden\n")
    frame = query([run], "SELECT language, value FROM results ORDER BY language")
    assert frame.to_dict("list") == {"language": ["en", "sw"], "value": [0.75, 0.25]}
    assert query([run], "SELECT count(*) AS n FROM items")["n"].tolist() == [0]  # no items file: an empty view
    for sql in (f"EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{written}' (FORMAT parquet, USE_TMP_FILE false)",
                f"SELECT * FROM read_parquet('{written}')", f"SELECT * FROM read_csv('{tmp_path}/other.csv')",
                "EXPLAIN ANALYZE SET enable_external_access = true"):
        with pytest.raises(duckdb.Error, match="disabled by configuration|configuration has been locked"):
            query([run], sql)
    assert written.read_bytes() == before and sorted(p.name for p in run.iterdir()) == ["results.parquet"]
