"""Reading a results tree with the tools analysts use, each with its default settings.

Each reader gives a `Reading`: the row count, the columns, each data column's type as one
word (`string`, `int`, `float`, `timestamp`, `null`), and the answer of the README's
latest-outcome query (or the same rule in that tool's own terms). The tests compare the
readings of one tree with each other and with the declared row schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sprunner.results.rowschema import COLUMNS

README = Path(__file__).parents[2] / "README.md"
PARTITIONS = ("collection", "date")
DECLARED = {c.name: "string" if c.kind == "json" else c.kind for c in COLUMNS}
# One latest outcome: (collection, url, custom_id) -> (status, attempts, run_id).
Latest = dict[tuple[str, str, str | None], tuple[str, int, str]]


@dataclass(frozen=True)
class Tree:
    """A results tree: a local folder, or a prefix in a bucket of an S3 server."""

    format: str  # parquet | jsonl.gz
    root: str  # a local path, or "bucket/prefix"
    s3: Mapping[str, str] | None = None  # endpoint, key, secret, region

    @property
    def glob(self) -> str:
        scheme = "s3://" if self.s3 else ""
        return f"{scheme}{self.root}/**/*.{self.format}"


@dataclass
class Reading:
    rows: int
    columns: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict)
    latest: Latest = field(default_factory=dict)
    filled: frozenset[str] = frozenset()  # the columns with a value in some row


def latest_outcome_sql() -> str:
    """The README's latest-outcome query (the block after its marker), as documented."""
    text = README.read_text()
    found = re.search(r"<!-- latest-outcome -->\s*```sql\n(.*?)```", text, re.S)
    assert found, "the README's latest-outcome query is marked <!-- latest-outcome -->"
    return found.group(1)


def _latest_of(rows: Iterable[Mapping[str, Any]]) -> Latest:
    return {
        (str(r["collection"]), str(r["url"]), r["custom_id"]): (
            str(r["status"]),
            int(r["attempts"]),
            str(r["run_id"]),
        )
        for r in rows
    }


def _latest_by_rule(rows: list[dict[str, Any]]) -> Latest:
    """The README's rule without SQL: per request, the row of the latest run, then the
    most attempts."""
    best: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for row in rows:
        key = (str(row["collection"]), str(row["url"]), row["custom_id"])
        order = (row["run_started_at"], row["attempts"])
        if key not in best or order > (best[key]["run_started_at"], best[key]["attempts"]):
            best[key] = row
    return _latest_of(best.values())


# -- DuckDB ------------------------------------------------------------------------------
_DUCKDB = {
    "VARCHAR": "string",
    "BIGINT": "int",
    "DOUBLE": "float",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    '"NULL"': "null",
}


def duckdb(tree: Tree, fs: Any = None) -> Reading:
    import duckdb as db

    connection = db.connect()
    if fs is not None:
        connection.register_filesystem(fs)
    reader = "read_parquet" if tree.format == "parquet" else "read_json_auto"
    source = f"{reader}('{tree.glob}', hive_partitioning = true)"
    relation = connection.sql(f"SELECT * FROM {source}")
    named = zip(relation.columns, relation.types, strict=True)
    types = {c: _DUCKDB.get(str(t), str(t)) for c, t in named}
    [(rows,)] = connection.sql(f"SELECT count(*) FROM {source}").fetchall()
    sql = latest_outcome_sql()
    documented = "read_parquet('results/**/*.parquet', hive_partitioning = true)"
    assert documented in sql, sql
    latest = connection.sql(sql.replace(documented, source).rstrip().rstrip(";"))
    answer = [dict(zip(latest.columns, r, strict=True)) for r in latest.fetchall()]
    return Reading(int(rows), tuple(relation.columns), types, _latest_of(answer))


# -- pyarrow, pandas ---------------------------------------------------------------------
def _arrow_kind(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz == "UTC" else f"timestamp[{arrow_type.tz}]"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_dictionary(arrow_type):
        return _arrow_kind(arrow_type.value_type)
    return str(arrow_type)


def _arrow_fs(tree: Tree) -> Any:
    if tree.s3 is None:
        return None
    import pyarrow.fs as pafs

    endpoint = tree.s3["endpoint"]
    return pafs.S3FileSystem(
        access_key=tree.s3["key"],
        secret_key=tree.s3["secret"],
        endpoint_override=endpoint,
        region=tree.s3["region"],
        scheme=endpoint.split("://", 1)[0],
    )


def _from_arrow(table: Any) -> Reading:
    rows: list[dict[str, Any]] = table.to_pylist()
    types = {f.name: _arrow_kind(f.type) for f in table.schema}
    filled = frozenset(c for c in table.column_names if table.column(c).null_count < len(rows))
    latest = _latest_by_rule(rows)
    return Reading(table.num_rows, tuple(table.column_names), types, latest, filled)


def pyarrow_dataset(tree: Tree, schema: Any = None) -> Reading:
    """`pyarrow.dataset(..., partitioning="hive")`; JSON lines need `schema` (pyarrow infers
    a JSON file's types from its own values: a column null in one file and set in another
    cannot be read as one table without it)."""
    import pyarrow.dataset as ds

    if tree.format == "parquet":
        dataset = ds.dataset(
            tree.root, filesystem=_arrow_fs(tree), format="parquet", partitioning="hive"
        )
        return _from_arrow(dataset.to_table())
    import pyarrow as pa
    import pyarrow.json as pj

    assert schema is not None
    full = schema.append(pa.field("collection", pa.string())).append(pa.field("date", pa.string()))
    options = pj.ParseOptions(explicit_schema=schema)
    dataset = ds.dataset(
        tree.root,
        schema=full,
        filesystem=_arrow_fs(tree),
        format=ds.JsonFileFormat(parse_options=options),
        partitioning="hive",
    )
    return _from_arrow(dataset.to_table())


_PANDAS: dict[str, str] = {"int64": "int", "float64": "float", "object": "string"}


def pandas(tree: Tree) -> Reading:
    import pandas as pd

    location = f"s3://{tree.root}" if tree.s3 else tree.root
    options = _fsspec_options(tree)
    frame = (
        pd.read_parquet(location, storage_options=options) if options else pd.read_parquet(location)
    )
    types = {}
    for name, dtype in frame.dtypes.items():
        text = str(dtype)
        if text.startswith("datetime64") and text.endswith("UTC]"):
            types[str(name)] = "timestamp"
        elif text in ("str", "string") or "String" in type(dtype).__name__:
            types[str(name)] = "string"
        elif text == "category":
            types[str(name)] = _PANDAS.get(str(dtype.categories.dtype), "string")
        else:
            types[str(name)] = _PANDAS.get(text, text)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return Reading(
        len(frame), tuple(str(c) for c in frame.columns), types, _latest_by_rule(records)
    )


def _fsspec_options(tree: Tree) -> dict[str, Any] | None:
    if tree.s3 is None:
        return None
    return {
        "key": tree.s3["key"],
        "secret": tree.s3["secret"],
        "endpoint_url": tree.s3["endpoint"],
        "client_kwargs": {"region_name": tree.s3["region"]},
    }


# -- Polars ------------------------------------------------------------------------------
def _polars_kind(dtype: Any) -> str:
    import polars as pl

    if isinstance(dtype, pl.Datetime):
        return "timestamp" if dtype.time_zone == "UTC" else f"timestamp[{dtype.time_zone}]"
    mapping: dict[Any, str] = {
        pl.String: "string",
        pl.Int64: "int",
        pl.Float64: "float",
        pl.Null: "null",
        pl.Date: "date",
    }
    return next((word for t, word in mapping.items() if dtype == t), str(dtype))


def polars(tree: Tree, schema: Mapping[str, Any] | None = None) -> Reading:
    """`scan_parquet(..., hive_partitioning=True)`, or `scan_ndjson` (which has no hive
    partitioning, and infers a file's types from its first rows: `schema` is needed)."""
    import polars as pl

    options = None
    if tree.s3 is not None:
        options = {
            "aws_endpoint_url": tree.s3["endpoint"],
            "aws_access_key_id": tree.s3["key"],
            "aws_secret_access_key": tree.s3["secret"],
            "aws_region": tree.s3["region"],
            "aws_allow_http": "true",
        }
    if tree.format == "parquet":
        frame = pl.scan_parquet(tree.glob, hive_partitioning=True, storage_options=options)
    else:
        frame = pl.scan_ndjson(tree.glob, schema=schema, storage_options=options)
    collected = frame.collect()
    types = {name: _polars_kind(dtype) for name, dtype in collected.schema.items()}
    rows = collected.to_dicts()
    latest = _latest_by_rule(rows) if tree.format == "parquet" else {}
    return Reading(collected.height, tuple(collected.columns), types, latest)


def polars_schema(arrow_schema: Any) -> dict[str, Any]:
    """The published schema in Polars' terms (for `scan_ndjson`)."""
    import polars as pl

    words = {"string": pl.String, "int": pl.Int64, "float": pl.Float64}
    return {
        f.name: pl.Datetime("us", "UTC")
        if _arrow_kind(f.type) == "timestamp"
        else words[_arrow_kind(f.type)]
        for f in arrow_schema
    }
