"""Reading what `results:` produced: files of the Hive layout, their rows and manifests."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sprunner.emulator.server import EmulatorHandle


def run_ids(emulator: EmulatorHandle) -> list[str]:
    return list(emulator.engine.runs)


def job_ids(emulator: EmulatorHandle, run_id: str) -> list[str]:
    """Every job id of one run, as the emulator made them."""
    run = emulator.engine.runs[run_id]
    return [run.job_id(job.index) for job in run.jobs]


def data_file(root: Path, collection: str, run_id: str, fmt: str = "jsonl.gz") -> Path:
    """The one file of `run_id` under `root` (whatever the date), asserting the layout."""
    found = sorted(root.glob(f"collection={collection}/date=*/{run_id}.{fmt}"))
    assert len(found) == 1, sorted(str(p) for p in root.rglob("*"))
    return found[0]


def manifest_of(data: Path) -> dict[str, Any]:
    stem = data.name.split(".", 1)[0]
    manifest: dict[str, Any] = json.loads((data.parent / f"_{stem}.manifest.json").read_text())
    return manifest


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a result file, whichever format (timestamps as JSON lines spell them)."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        from sprunner.results.times import utc_text

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        for row in rows:
            for name, value in row.items():
                if isinstance(value, datetime):
                    row[name] = utc_text(value)
        return rows
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.splitlines()]


def leftovers(root: Path) -> list[str]:
    """Partial files still lying around (there must be none once a file is published)."""
    return sorted(str(p) for p in root.rglob("*.part"))
