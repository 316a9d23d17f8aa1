"""Reading result files back, as a user of the layout would."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sprunner.results.times import format_time


def read_rows(path: Path, format: str) -> list[dict[str, Any]]:
    """The rows of a file, each without its null columns (every row has every column of
    the row schema: what matters to these tests is which have values)."""
    if format == "parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        for row in rows:  # timestamps as the JSON lines spell them
            for name, value in row.items():
                if isinstance(value, datetime):
                    row[name] = format_time(value)
    else:
        data = path.read_bytes()
        if format == "jsonl.gz":
            data = gzip.decompress(data)  # every member, as zcat and DuckDB read it
        rows = [json.loads(line) for line in data.splitlines()]
    return [{k: v for k, v in row.items() if v is not None} for row in rows]
