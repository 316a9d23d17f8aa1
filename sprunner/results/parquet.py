"""Staged gzip JSON lines → Parquet with the declared row schema (the `parquet` extra).

One pass over the local staging file, row group by row group: memory is bounded by one
row group (`ROW_GROUP_BYTES` of input, or one row when a row is larger). Every file has
the columns and types of `rowschema.arrow_schema()`, whatever its values: a run where
every job timed out has the body columns too (all null), `status_code` is int64 in every
run, and `completed_at` a UTC timestamp.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sprunner.results.rowschema import COLUMNS, NAMES, arrow_schema, conformed

ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_ROWS = 50_000
BODIES = frozenset({"html", "markdown", "extracted_data", "screenshot", "extra"})


def _lines(staging: Path) -> Iterator[bytes]:
    with gzip.open(staging, "rb") as stream:
        yield from stream


def _table(rows: list[dict[str, Any]], schema: Any) -> Any:
    import pyarrow as pa

    arrays = []
    for column, field in zip(COLUMNS, schema, strict=True):
        values = [row[column.name] for row in rows]
        if column.kind == "timestamp":
            # UTC ISO text (rowschema) → timestamp, parsed by Arrow in C++.
            arrays.append(pa.array(values, pa.string()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _row_groups(staging: Path, schema: Any, fill: dict[str, Any]) -> Iterator[Any]:
    """The staged rows as tables of one row group each; a group's Python rows are dropped
    before its table is written (a 100 MB page is held as Arrow data then, not twice)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for line in _lines(staging):
        size += len(line)
        row = json.loads(line)
        del line  # a huge row: its text goes before its row group is built
        # Rows the drain wrote are in the schema already; any other is made so.
        batch.append(row if tuple(row) == NAMES else conformed(row, **fill))
        del row  # only the batch holds it: dropped with the batch, before the write
        if size >= ROW_GROUP_BYTES or len(batch) >= ROW_GROUP_ROWS:
            table, batch, size = _table(batch, schema), [], 0
            yield table
    if batch:
        table, batch = _table(batch, schema), []
        yield table


def convert(
    staging: Path, target: Path, *, run_id: str | None = None, run_started_at: str | None = None
) -> None:
    """Write `target` as Parquet holding every row of `staging`, in order (`run_id` and
    `run_started_at` fill what rows staged by an older sprunner lack).

    The page bodies get neither statistics nor a dictionary: min/max of HTML help no query,
    and would copy a 100 MB value into the footer several times (bench_big_result.py)."""
    import pyarrow.parquet as pq

    schema = arrow_schema()
    small = [c.name for c in COLUMNS if c.name not in BODIES]
    fill = {"run_id": run_id, "run_started_at": run_started_at}
    with pq.ParquetWriter(
        target, schema, compression="zstd", use_dictionary=small, write_statistics=small
    ) as writer:
        for table in _row_groups(staging, schema, fill):
            writer.write_table(table)
