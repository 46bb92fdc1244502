"""The tidy results store: one row per (run, task, language, metric), in Parquet, queried with DuckDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from langmix.records import ResultRow

SCHEMA = pa.schema([(name, pa.float64() if f.annotation is float else pa.int64() if f.annotation is int
                     else pa.string()) for name, f in ResultRow.model_fields.items()])


def write_rows(rows: list[ResultRow], path: Path) -> Path:
    table = pa.Table.from_pylist([r.model_dump() for r in rows], schema=SCHEMA)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def write_predictions(predictions: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    return path


def collect(run_files: list[Path], out: Path) -> Path:
    """Concatenate per-run result files into the study table."""
    tables = [pq.read_table(p) for p in run_files]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    pq.write_table(table, out)
    return out


def query(results: Path, sql: str):
    """Run SQL against the results table, exposed as the view `results`; returns a pandas DataFrame."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet('{results.as_posix()}')")
    return con.execute(sql).df()
