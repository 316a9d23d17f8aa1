"""A run and its retry runs folded into one published file: one line per request, final
status and attempts (SPEC §8 meets §7)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.layout import Format, ResultPaths, result_paths
from sprunner.results.merge import Staged, fold, staging_paths
from sprunner.results.writer import ResultWriter
from tests.unit.results.helpers import read_rows


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


def stage(paths: ResultPaths, run_id: str, rows: list[dict[str, Any]]) -> Staged:
    """Rows committed in a `.part`, as a drain settled but not published leaves them."""
    writer = ResultWriter(paths)
    for r in rows:
        writer.write(r)
    position = writer.commit()
    writer.close()
    return Staged(run_id, paths, position.lines)


@pytest.mark.parametrize("fmt", ["jsonl.gz", "jsonl", "parquet"])
def test_each_request_has_one_line_with_its_final_status_and_attempts(
    tmp_path: Path, fmt: Format
) -> None:
    paths = result_paths(str(tmp_path), collection="shop", run_id="r1", started=0.0, format=fmt)
    first = stage(
        paths,
        "r1",
        [row(0, "completed", html="a"), row(1, "failed"), row(2, "timeout"), row(3, "failed")],
    )
    # Retry 1 re-ran 1, 2 and 3 (2 succeeded); retry 2 re-ran 1 and 3; 3 never succeeded.
    one = stage(
        staging_paths(paths, 1),
        "r2",
        [row(1, "failed", 2), row(2, "completed", 2, html="b"), row(3, "failed", 2)],
    )
    two = stage(
        staging_paths(paths, 2), "r3", [row(1, "completed", 3, html="c"), row(3, "failed", 3)]
    )
    manifest = {"run_id": "r1", "total_requests": 4}

    started = "1970-01-01T00:00:00.000000Z"
    published, document = fold(paths, first, [one, two], manifest, run_started_at=started)

    rows = read_rows(Path(paths.data), fmt)
    # The file is the first run's final outcome: every row says so, whichever run settled it.
    assert {(r["run_id"], r["run_started_at"]) for r in rows} == {("r1", started)}
    assert sorted((r["custom_id"], r["status"], r["attempts"]) for r in rows) == [
        ("c0", "completed", 1), ("c1", "completed", 3), ("c2", "completed", 2), ("c3", "failed", 3)
    ]  # fmt: skip
    assert {r["custom_id"]: r.get("html") for r in rows if r["status"] == "completed"} == {
        "c0": "a", "c1": "c", "c2": "b"
    }  # fmt: skip
    written = json.loads(Path(paths.manifest).read_text())
    assert written == {
        **document,
        **{k: written[k] for k in ("file", "format", "lines", "bytes", "sha256")},
    }
    assert written["counts"] == {"completed": 3, "failed": 1, "timeout": 0}
    assert written["retries"] == ["r2", "r3"] and written["lines"] == 4
    assert written["attempts"] == {"1": 1, "2": 1, "3": 2} and written["missing"] == 0
    data = Path(paths.data).read_bytes()
    assert written["sha256"] == hashlib.sha256(data).hexdigest() == published.sha256
    # The staged files are only read: the caller removes them; the fold leaves no other.
    final_names = {Path(paths.data).name, Path(paths.manifest).name}
    assert {p.name for p in tmp_path.rglob("*") if p.is_file()} - final_names == {
        "_" + Path(s.paths.data).name + ".part" for s in (first, one, two)
    }


def test_a_fold_done_again_after_a_kill_gives_the_same_file(tmp_path: Path) -> None:
    paths = result_paths(str(tmp_path), collection="shop", run_id="r1", started=0.0, format="jsonl")
    first = stage(paths, "r1", [row(0, "completed"), row(1, "failed")])
    one = stage(staging_paths(paths, 1), "r2", [row(1, "completed", 2)])
    fold(paths, first, [one], {"total_requests": 2})
    once = Path(paths.data).read_bytes()
    fold(paths, first, [one], {"total_requests": 2})
    assert Path(paths.data).read_bytes() == once


def test_requests_that_share_a_key_are_counted_not_merged(tmp_path: Path) -> None:
    """Two requests with one (url, custom_id): one failed and was retried, the other not."""
    paths = result_paths(str(tmp_path), collection="shop", run_id="r1", started=0.0, format="jsonl")
    twin = row(1, "failed")
    first = stage(paths, "r1", [row(1, "completed"), twin, {**twin, "job_id": "other"}])
    one = stage(staging_paths(paths, 1), "r2", [row(1, "completed", 2)])
    _, document = fold(paths, first, [one], {"total_requests": 3})
    statuses = sorted(r["status"] for r in read_rows(Path(paths.data), "jsonl"))
    assert statuses == ["completed", "completed", "failed"]
    assert document["counts"] == {"completed": 2, "failed": 1, "timeout": 0}
