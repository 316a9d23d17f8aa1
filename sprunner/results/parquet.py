"""Staged gzip JSON lines → Parquet, row group by row group (the `parquet` extra).

Two passes over the local staging file keep memory bounded by one row group: the first
finds the columns and a type for each (int64, float64 or bool when every value fits,
otherwise string, with objects and lists as JSON text that DuckDB's `json` functions
read); the second writes row groups of at most `ROW_GROUP_BYTES` of input.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_ROWS = 50_000

# Columns every file has, in this order, even when it holds no row.
BASE_COLUMNS = {"job_id": "string", "url": "string", "custom_id": "string", "status": "string"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def _merge(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    if {old, new} == {"int64", "float64"}:
        return "float64"
    return "string"


def _lines(staging: Path) -> Iterator[bytes]:
    with gzip.open(staging, "rb") as stream:
        yield from stream


def infer_columns(staging: Path) -> dict[str, str]:
    """Column name → arrow type name, in order of first appearance."""
    kinds: dict[str, str | None] = dict.fromkeys(BASE_COLUMNS)
    for line in _lines(staging):
        for key, value in json.loads(line).items():
            if value is None:
                kinds.setdefault(key, None)
            else:
                kinds[key] = _merge(kinds.get(key), _kind(value))
    return {key: kind or BASE_COLUMNS.get(key, "string") for key, kind in kinds.items()}


def _cell(value: Any, kind: str) -> Any:
    if value is None or kind != "string" or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def convert(staging: Path, target: Path) -> None:
    """Write `target` as Parquet holding every row of `staging`, in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = infer_columns(staging)
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in columns.items()])
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        size = 0

        def flush() -> None:
            nonlocal size
            data = {n: [_cell(r.get(n), k) for r in batch] for n, k in columns.items()}
            writer.write_table(pa.Table.from_pydict(data, schema=schema))
            batch.clear()
            size = 0

        for line in _lines(staging):
            batch.append(json.loads(line))
            size += len(line)
            if size >= ROW_GROUP_BYTES or len(batch) >= ROW_GROUP_ROWS:
                flush()
        if batch:
            flush()
