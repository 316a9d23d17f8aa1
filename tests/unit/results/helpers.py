"""Reading result files back, as a user of the layout would."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def read_rows(path: Path, format: str) -> list[dict[str, Any]]:
    if format == "parquet":
        import pyarrow.parquet as pq

        # A Parquet row has every column: a field a row lacks reads back as null.
        table = pq.read_table(path).to_pylist()
        return [{k: v for k, v in row.items() if v is not None} for row in table]
    data = path.read_bytes()
    if format == "jsonl.gz":
        data = gzip.decompress(data)  # every member, as zcat and DuckDB read it
    return [json.loads(line) for line in data.splitlines()]
