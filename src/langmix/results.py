"""The tidy results store. Each evaluation run writes two Parquet files:

- `results.parquet`: one row per (eval run, task, language, metric) with value and n (`ResultRow`);
- `items.parquet`: one row per (eval run, item, language) with the item's verdicts (`ItemRow`).

The study-level tables `results` and `items` are DuckDB views over the files of the study's finished runs,
built when asked for, so they are never stale: a run that is re-evaluated or removed changes them at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from langmix import durable
from langmix.records import ItemRow, ResultRow


def _arrow_type(annotation: Any) -> pa.DataType:
    text = str(annotation)
    if "bool" in text:
        return pa.bool_()
    if annotation is float or text == "float":
        return pa.float64()
    if annotation is int or text == "int":
        return pa.int64()
    return pa.string()


def schema_of(model: type[BaseModel]) -> pa.Schema:
    return pa.schema([(name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()])


SCHEMA = schema_of(ResultRow)
ITEM_SCHEMA = schema_of(ItemRow)


def _write_table(table: pa.Table, path: Path) -> Path:
    tmp = durable.temp_beside(path)
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def write_rows(rows: list[ResultRow], path: Path) -> Path:
    return _write_table(pa.Table.from_pylist([r.model_dump() for r in rows], schema=SCHEMA), path)


def write_items(rows: list[ItemRow], path: Path) -> Path:
    return _write_table(pa.Table.from_pylist([r.model_dump() for r in rows], schema=ITEM_SCHEMA), path)


def _json_lines(records: list[dict[str, Any]]) -> Iterable[str]:
    """`json.dumps(record, ensure_ascii=False)` of each record, with containers that many records share (the same
    object, e.g. a task's tool schemas in every API prediction: 90% of each line) serialised once."""
    encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    shared: dict[int, tuple[Any, str]] = {}  # id -> (the object, kept alive so the id stays its own; its JSON)

    def value(v: Any, depth: int) -> str:
        if isinstance(v, dict) and depth < 2:
            if not all(isinstance(k, str) for k in v) or not any(isinstance(x, (list, dict)) and x
                                                                  for x in v.values()):
                return encode(v)  # nothing in it to share: one call of the C encoder
            return "{" + ", ".join(f"{encode(k)}: {value(x, depth + 1)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, dict)) and v:
            known = shared.get(id(v))
            if known is None or known[0] is not v:
                known = shared[id(v)] = (v, encode(v))
            return known[1]
        return encode(v)

    for record in records:
        yield value(record, 0)


def write_predictions(predictions: list[dict[str, Any]], path: Path) -> Path:
    tmp = durable.temp_beside(path)
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in _json_lines(predictions))
    tmp.replace(path)
    return path


VIEWS = ("results", "items")


def connect(run_dirs: Iterable[Path]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views `results` and `items` over the given evaluation run directories."""
    dirs = list(run_dirs)
    con = duckdb.connect()
    for view, name, schema in (("results", "results.parquet", SCHEMA), ("items", "items.parquet", ITEM_SCHEMA)):
        files = [(d / name).as_posix() for d in dirs if (d / name).exists()]
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{listed}], union_by_name=true)")
        else:
            con.register(f"_{view}_empty", schema.empty_table())
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_empty")
    return con


def seal(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Make `con` safe for SQL from a user: the views `results` and `items` become in-memory tables, then the
    engine's access to anything outside itself is turned off (files, other databases, extensions, Python objects)
    and its configuration locked, so no statement can turn it back on. A statement run on it afterwards reads those
    tables and writes nowhere: an `EXPLAIN ANALYZE COPY ... TO` (EXPLAIN ANALYZE runs its statement) or a
    `read_csv('/etc/passwd')` is refused by DuckDB itself. (Allowing only the study's files is not enough: DuckDB
    lets a statement write to a path it may read.)"""
    for view in VIEWS:
        con.execute(f"CREATE TABLE _sealed_{view} AS SELECT * FROM {view}")
        con.execute(f"DROP VIEW {view}")
        con.execute(f"ALTER TABLE _sealed_{view} RENAME TO {view}")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def refused(exc: duckdb.Error) -> bool:
    """Whether a sealed connection (`seal`) refused the statement: it reached for a file, a database, an extension
    or a setting."""
    return isinstance(exc, duckdb.PermissionException) or "the configuration has been locked" in str(exc)


def query(run_dirs: Iterable[Path], sql: str):
    """Run SQL against the views `results` and `items` (on a sealed connection: it reads them and writes nowhere);
    returns a pandas DataFrame."""
    return seal(connect(run_dirs)).execute(sql).df()
