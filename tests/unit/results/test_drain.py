"""The drain against an in-memory jobs API with the documented paging and filters."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from sprunner.results.checkpoint import DrainCheckpoint
from sprunner.results.drain import Drain, DrainOutcome, DrainTarget
from sprunner.results.layout import Format, ResultPaths, result_paths
from sprunner.results.rowschema import NAMES
from sprunner.results.writer import ResultWriter
from tests.unit.results.fakeapi import FakeJobsApi, FakeRun, job
from tests.unit.results.helpers import read_rows

T = "2026-11-28T12:00:{:02d}.{:03d}Z"


STARTED = "2027-01-15T08:00:00.000000Z"


def _target(tmp_path: Path, format: Format = "jsonl.gz", **kw: Any) -> DrainTarget:
    paths = result_paths(
        str(tmp_path / "out"), collection="shop", run_id="run-1", started=1.8e9, format=format
    )
    return DrainTarget(
        collection="shop",
        collection_id="col-1",
        run_id="run-1",
        paths=paths,
        run_started_at=STARTED,
        **kw,
    )


def _drain(api: FakeJobsApi, tmp_path: Path, warnings: list[str] | None = None, **kw: Any) -> Drain:
    sink = warnings if warnings is not None else []
    return Drain(api, _target(tmp_path), warn=sink.append, **kw)


def _finish(drain: Drain, run: FakeRun) -> DrainOutcome:
    return asyncio.run(drain.finish(run))


def _ids(tmp_path: Path, format: str = "jsonl.gz") -> list[str]:
    files = list((tmp_path / "out").glob(f"collection=shop/date=*/run-1.{format}"))
    assert len(files) == 1
    return [row["job_id"] for row in read_rows(files[0], format)]


def test_rows_have_every_column_of_the_schema_and_no_screenshot_by_default(
    tmp_path: Path,
) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(2, T.format(2, 0), status="failed"))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(2)))
    outcome = _finish(drain, api.run(2, done=True))

    path = Path(outcome.file.data)
    raw = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert [tuple(r) for r in raw] == [NAMES, NAMES], "every column, in order, in every row"
    rows = read_rows(path, "jsonl.gz")
    assert rows[0]["url"] == "https://example.com/1" and rows[0]["html"] == "x" * 100
    assert rows[0]["extracted_data"] == '{"n":1}' and "screenshot" not in rows[0]
    assert rows[0]["status_code"] == 200 and "statusCode" not in raw[0]
    assert rows[0]["completed_at"] == "2026-11-28T12:00:01.000000Z"
    assert (rows[0]["run_id"], rows[0]["run_started_at"]) == ("run-1", STARTED)
    assert rows[0]["attempts"] == 1 and rows[0].get("result_unavailable") is None
    assert rows[1]["status"] == "failed" and rows[1]["block_reason"] == "captcha"
    assert "html" not in rows[1]
    assert [(f.custom_id, f.status_code, f.block_reason) for f in outcome.failed_jobs] == [
        ("c2", 503, "captcha")
    ]
    assert outcome.counts == {"completed": 1, "failed": 1}


def test_chosen_fields_only(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)))
    drain = Drain(api, _target(tmp_path, fields=("markdown",)), warn=lambda _: None)
    outcome = _finish(drain, api.run(1, done=True))
    (row,) = read_rows(Path(outcome.file.data), "jsonl.gz")
    assert row["markdown"] == "# 1" and "html" not in row and row["job_id"] == "job-00001"
    assert "extracted_data" not in row and row["status_code"] == 200  # always filled


def test_no_jobs_call_when_the_poll_shows_no_new_finished_job(tmp_path: Path) -> None:
    api = FakeJobsApi()
    drain = _drain(api, tmp_path)
    assert asyncio.run(drain.step(api.run(5))) is False  # nothing finished yet
    api.add(job(1, T.format(1, 0)))
    assert asyncio.run(drain.step(api.run(5))) is True
    assert asyncio.run(drain.step(api.run(5))) is False
    drain.close()
    assert len(api.list_calls()) == 1
    call = api.list_calls()[0]
    assert call["status_filter"] == ("completed", "failed", "timeout")
    assert (call["order_by"], call["order_dir"], call["include_results"]) == (
        "completed_at",
        "asc",
        True,
    )


def test_ties_in_one_millisecond_are_neither_dropped_nor_doubled(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 5)), job(2, T.format(1, 5)))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(4)))
    assert drain.checkpoint.high_water == T.format(1, 5)
    assert drain.checkpoint.ids_at_mark == ("job-00001", "job-00002")
    # A job completed in the same millisecond shows up only now, with one later job.
    api.add(job(3, T.format(1, 5)), job(4, T.format(1, 6)))
    asyncio.run(drain.step(api.run(4)))
    assert api.list_calls()[1]["since"] < T.format(1, 5)  # the mark's ties are read again
    _finish(drain, api.run(4, done=True))
    assert _ids(tmp_path) == ["job-00001", "job-00002", "job-00003", "job-00004"]


def test_cursor_paging_with_the_include_results_cap(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(*(job(n, T.format(n // 100, n % 100)) for n in range(250)))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(250)))
    calls = api.list_calls()
    assert [c["cursor"] for c in calls] == [None, "100", "200"]
    assert all(c["limit"] <= 100 for c in calls)
    outcome = _finish(drain, api.run(250, done=True))
    assert len(api.list_calls()) == 3  # everything was already drained
    assert _ids(tmp_path) == [f"job-{n:05d}" for n in range(250)]
    assert outcome.lines == 250 and outcome.missing == 0


def test_a_body_over_the_inline_cap_is_fetched_alone(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(2, T.format(2, 0), size=10_000), job(3, T.format(3, 0)))
    drain = _drain(api, tmp_path)
    outcome = _finish(drain, api.run(3, done=True))
    assert api.result_calls() == ["job-00002"]
    rows = read_rows(Path(outcome.file.data), "jsonl.gz")
    assert [r["job_id"] for r in rows] == ["job-00001", "job-00002", "job-00003"]
    assert rows[1]["html"] == "x" * 10_000


def test_expired_and_lost_results_are_counted_warned_and_still_get_a_row(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0), expired=True), job(2, T.format(2, 0)), job(3, T.format(3, 0)))
    api.lost.add("job-00003")
    warnings: list[str] = []
    drain = _drain(api, tmp_path, warnings)
    outcome = _finish(drain, api.run(3, done=True))

    rows = read_rows(Path(outcome.file.data), "jsonl.gz")
    assert [r.get("result_unavailable") for r in rows] == ["result_expired", None, "result_lost"]
    assert rows[0]["url"] == "https://example.com/1" and rows[0].get("html") is None
    assert (outcome.expired, outcome.missing, outcome.lines) == (1, 1, 3)
    manifest = json.loads(Path(outcome.file.manifest).read_text())
    assert (manifest["expired"], manifest["missing"]) == (1, 1)
    assert any("job-00001" in w and "expired" in w for w in warnings)
    assert any("1 result(s) expired and 1 missing" in w for w in warnings)


def test_manifest_contents(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(2, T.format(2, 0), status="timeout"))
    outcome = _finish(_drain(api, tmp_path), api.run(3, done=True))
    manifest = json.loads(Path(outcome.file.manifest).read_text())
    assert manifest["run_id"] == "run-1" and manifest["collection"] == "shop"
    assert manifest["counts"] == {"completed": 1, "failed": 0, "timeout": 1}
    assert manifest["lines"] == 2 and manifest["bytes"] == outcome.bytes
    assert manifest["missing"] == 1  # one request of three never finished
    assert manifest["started_at"] <= manifest["finished_at"]
    assert manifest["sprunner_version"] and manifest["sha256"] == outcome.file.sha256
    assert outcome.report() == {
        "to": str(tmp_path / "out"), "lines": 2, "bytes": outcome.bytes, "expired": 0, "missing": 1
    }  # fmt: skip


def test_waits_for_all_jobs_persisted_then_sweeps_for_late_jobs(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(3, T.format(3, 0)))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(3)))
    # Job 2 completed before the mark but is persisted only after the run completed.
    refetches = []

    async def refetch() -> FakeRun:
        refetches.append(1)
        api.add(job(2, T.format(2, 0)))
        return api.run(3, done=True)

    async def no_sleep(_: float) -> None:
        return None

    outcome = asyncio.run(drain.finish(api.run(3, done=False), refetch=refetch, sleep=no_sleep))
    assert refetches == [1]
    assert sorted(_ids(tmp_path)) == ["job-00001", "job-00002", "job-00003"]
    assert outcome.missing == 0
    assert api.result_calls() == ["job-00002"]  # only the straggler's body is fetched again


def test_resume_after_a_kill_neither_loses_nor_doubles(tmp_path: Path) -> None:
    api = FakeJobsApi()
    journal: list[DrainCheckpoint] = []
    api.add(*(job(n, T.format(n // 100, n % 100)) for n in range(150)))
    drain = _drain(api, tmp_path, on_commit=journal.append)
    asyncio.run(drain.step(api.run(400)))
    journaled = DrainCheckpoint.from_json(json.loads(json.dumps(drain.checkpoint.to_json())))
    # More pages are committed, but the kill comes before the journal records them.
    api.add(*(job(n, T.format(n // 100, n % 100)) for n in range(150, 300)))
    asyncio.run(drain.step(api.run(400)))
    drain.close()
    part = Path(journaled.paths.part())
    assert part.name.startswith("_")  # Hive readers skip it
    with open(part, "ab") as torn:
        torn.write(b"\x1f\x8b\x08 torn")
    assert part.stat().st_size > journaled.bytes

    api.add(*(job(n, T.format(n // 100, n % 100)) for n in range(300, 400)))
    resumed = Drain.resume(api, _target(tmp_path), journaled, warn=lambda _: None)
    assert resumed.restarted is False
    outcome = _finish(resumed, api.run(400, done=True))
    assert _ids(tmp_path) == [f"job-{n:05d}" for n in range(400)]
    assert outcome.lines == 400 and resumed.checkpoint.finished
    assert len(journal) >= 2


def test_resume_without_the_partial_file_starts_again(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(*(job(n, T.format(1, n)) for n in range(5)))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(5)))
    checkpoint = drain.checkpoint
    drain.close()
    Path(checkpoint.paths.part()).unlink()
    warnings: list[str] = []
    resumed = Drain.resume(api, _target(tmp_path), checkpoint, warn=warnings.append)
    assert resumed.restarted and "again" in warnings[0]
    _finish(resumed, api.run(5, done=True))
    assert _ids(tmp_path) == [f"job-{n:05d}" for n in range(5)]


def test_failed_jobs_survive_a_resume(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0), status="failed"), job(2, T.format(2, 0)))
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(3)))
    checkpoint = drain.checkpoint
    drain.close()
    api.add(job(3, T.format(3, 0), status="timeout"))
    resumed = Drain.resume(api, _target(tmp_path), checkpoint, warn=lambda _: None)
    outcome = _finish(resumed, api.run(3, done=True))
    assert [(f.job_id, f.status) for f in outcome.failed_jobs] == [
        ("job-00001", "failed"),
        ("job-00003", "timeout"),
    ]


def test_parquet_drain(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(*(job(n, T.format(1, n)) for n in range(20)))
    drain = Drain(api, _target(tmp_path, "parquet"), warn=lambda _: None)
    asyncio.run(drain.step(api.run(20)))
    outcome = _finish(drain, api.run(20, done=True))
    assert outcome.file.data.endswith(".parquet")
    assert _ids(tmp_path, "parquet") == [f"job-{n:05d}" for n in range(20)]


def test_a_published_run_is_not_drained_again(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)))
    drain = _drain(api, tmp_path)
    _finish(drain, api.run(1, done=True))
    assert drain.checkpoint.finished
    with pytest.raises(ValueError, match="already published"):
        Drain.resume(api, _target(tmp_path), drain.checkpoint, warn=lambda _: None)
    assert _ids(tmp_path) == ["job-00001"]


def test_a_pending_body_is_read_again_at_the_next_poll(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(2, T.format(2, 0)), job(3, T.format(3, 0)))
    api.pending.add("job-00002")
    drain = _drain(api, tmp_path)
    asyncio.run(drain.step(api.run(3)))
    assert drain.checkpoint.lines == 1 and drain.checkpoint.high_water == T.format(1, 0)
    api.pending.clear()
    assert asyncio.run(drain.step(api.run(3))) is True  # same counts, but not all drained
    assert asyncio.run(drain.step(api.run(3))) is False
    outcome = _finish(drain, api.run(3, done=True))
    assert _ids(tmp_path) == ["job-00001", "job-00002", "job-00003"]
    assert outcome.missing == 0


def test_a_body_pending_for_good_counts_as_missing(tmp_path: Path) -> None:
    api = FakeJobsApi()
    api.add(job(1, T.format(1, 0)), job(2, T.format(2, 0)))
    api.pending.add("job-00001")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    drain = _drain(api, tmp_path)
    outcome = asyncio.run(drain.finish(api.run(2, done=True), sleep=sleep))
    assert waits == [1.0, 2.0, 4.0]
    rows = read_rows(Path(outcome.file.data), "jsonl.gz")
    assert [(r["job_id"], r.get("result_unavailable")) for r in rows] == [
        ("job-00001", "result_pending"),
        ("job-00002", None),
    ]
    assert outcome.missing == 1


def test_a_drain_an_older_sprunner_began_is_finished_in_the_schema(tmp_path: Path) -> None:
    """A state and a tree written before the row schema and the `_` names: the drain goes
    on from its `<data>.part`, its old rows are mapped to the schema, its manifest gets a
    `_` name, and what the old version published beside it is left as it is."""
    paths = _target(tmp_path).paths
    legacy = ResultPaths(paths.to, paths.directory, paths.data, "", "jsonl.gz", legacy=True)
    writer = ResultWriter(legacy)
    for n in range(3):  # as the older version wrote a row: the job's fields and the body's
        writer.write(
            {"job_id": f"job-{n:05d}", "url": f"https://example.com/{n}", "custom_id": f"c{n}"}
            | {"status": "completed", "status_code": 200, "attempts": 1, "html": "x"}
            | {"statusCode": 200, "executionTime": 0.25, "content_type": "text/html"}
        )
    position = writer.commit()
    writer.close()
    assert Path(paths.data + ".part").exists()
    earlier = Path(paths.directory) / "run-0.manifest.json"
    earlier.write_text("{}")
    journaled = {  # DrainCheckpoint.to_json of the older version
        "version": 1,
        "run_id": "run-1",
        "data": paths.data,
        "manifest": paths.legacy_manifest,
        "format": "jsonl.gz",
        "to": paths.to,
        "started_at": STARTED,
        "high_water": T.format(2, 0),
        "ids_at_mark": ["job-00002"],
        "lines": position.lines,
        "bytes": position.bytes,
        "seen_finished": 3,
        "finished": False,
    }
    api = FakeJobsApi()
    api.add(*(job(n, T.format(n, 0)) for n in range(5)))
    checkpoint = DrainCheckpoint.from_json(journaled)
    resumed = Drain.resume(api, _target(tmp_path), checkpoint, warn=lambda _: None)
    outcome = _finish(resumed, api.run(5, done=True))

    raw = [json.loads(line) for line in gzip.decompress(Path(paths.data).read_bytes()).splitlines()]
    assert [r["job_id"] for r in raw] == [f"job-{n:05d}" for n in range(5)]
    assert all(tuple(r) == NAMES and r["run_id"] == "run-1" for r in raw)
    assert raw[0]["execution_time_ms"] == 250.0 and raw[0]["run_started_at"] == STARTED
    assert outcome.file.manifest == paths.manifest and Path(paths.manifest).exists()
    assert earlier.read_text() == "{}" and not Path(paths.data + ".part").exists()
