"""Retry outcomes folded into a published result file: one line per request, final status."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.layout import Format, result_paths
from sprunner.results.merge import merge_retry, read_published
from sprunner.results.writer import ResultWriter


def row(n: int, status: str, attempts: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": f"j{n}-{attempts}",
        "url": f"https://shop.test/{n}",
        "custom_id": f"c{n}",
        "status": status,
        "attempts": attempts,
        "result_unavailable": None,
        **extra,
    }


@pytest.mark.parametrize("fmt", ["jsonl.gz", "jsonl", "parquet"])
def test_retried_requests_replace_their_rows_in_place(tmp_path: Path, fmt: Format) -> None:
    paths = result_paths(str(tmp_path), collection="shop", run_id="r1", started=0.0, format=fmt)
    first = [row(0, "completed", html="a"), row(1, "failed"), row(2, "timeout"), row(3, "failed")]
    writer = ResultWriter(paths)
    for r in first:
        writer.write(r)
    writer.publish({"run_id": "r1", "total_requests": 4, "counts": {}})

    retry = [row(1, "completed", attempts=2, html="b"), row(3, "failed", attempts=2)]
    published = merge_retry(paths, retry, retry_run_id="r2", spool_dir=tmp_path / "spool")

    rows = list(read_published(paths))
    assert [(r["custom_id"], r["status"], r["attempts"]) for r in rows] == [
        ("c0", "completed", 1), ("c1", "completed", 2), ("c2", "timeout", 1), ("c3", "failed", 2)
    ]  # fmt: skip
    manifest = json.loads(Path(paths.manifest).read_text())
    assert manifest["counts"] == {"completed": 2, "failed": 1, "timeout": 1}
    assert manifest["retries"] == ["r2"] and manifest["lines"] == 4 and manifest["missing"] == 0
    data = Path(paths.data).read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == published.sha256
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [Path(paths.data).name, Path(paths.manifest).name]
    )
