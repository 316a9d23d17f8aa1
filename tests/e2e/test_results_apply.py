"""`results:` through `sprunner apply` (SPEC §7): the scraped data lands in the Hive layout,
one row per job, drained while the run goes on, under faults and short retention."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.bodies import RESULT_INLINE_CAP
from sprunner.emulator.server import running_emulator
from sprunner.results.rowschema import NAMES
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.results_helpers import (
    data_file,
    job_ids,
    leftovers,
    manifest_of,
    read_rows,
    run_ids,
)

BIG = RESULT_INLINE_CAP + 40_000  # over the inline cap: fetched alone

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.test/big/{{{{ i }}}}?size={big}"
        foreach: {{i: "{{{{ range(3) }}}}"}}
      - url: "https://shop.test/p/{{{{ i }}}}"
        custom_id: "p{{{{ i }}}}"
        foreach: {{i: "{{{{ range({n}) }}}}"}}
      - url: https://shop.test/fail
      - url: https://shop.test/timeout
      - url: https://shop.test/blocked
        custom_id: b
    run: {{poll_interval: 0.2s, max_failed: 3}}
    results: {{to: "{to}", format: {fmt}}}
"""


def job_text(to: Path | str, *, n: int = 40, fmt: str = "jsonl.gz") -> str:
    return JOB.format(big=BIG, n=n, to=to, fmt=fmt)


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=1.0) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def check_one_row_per_job(sprunner: Sprunner, rows: list[dict[str, object]], run_id: str) -> None:
    ids = [str(r["job_id"]) for r in rows]
    assert len(ids) == len(set(ids)), "a job written twice"
    assert sorted(ids) == sorted(job_ids(sprunner.emulator, run_id)), "a job missing"


@pytest.mark.parametrize("fmt", ["jsonl.gz", "jsonl", "parquet"])
def test_an_apply_writes_one_row_per_job_in_the_hive_layout(
    sprunner: Sprunner, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "results"
    result, report = sprunner.apply(write_job(tmp_path, job_text(out, fmt=fmt)))
    assert result.exit_code == 0, result.output
    [run_id] = run_ids(sprunner.emulator)
    data = data_file(out, "shop", run_id, fmt)
    rows = read_rows(data)
    check_one_row_per_job(sprunner, rows, run_id)
    by_url = {r["url"]: r for r in rows}
    assert Counter(r["status"] for r in rows) == {"completed": 43, "failed": 2, "timeout": 1}
    blocked = by_url["https://shop.test/blocked"]
    assert (blocked["custom_id"], blocked["status_code"], blocked["block_reason"]) == (
        "b", 403, "captcha"
    )  # fmt: skip
    assert by_url["https://shop.test/p/7"]["custom_id"] == "p7"
    assert all(r["result_unavailable"] is None for r in rows)
    # Bodies over the inline cap are read alone, and whole.
    bigs = [r for r in rows if "/big/" in str(r["url"])]
    assert len(bigs) == 3 and all(len(str(r["html"])) > RESULT_INLINE_CAP // 2 for r in bigs)
    assert sprunner.calls()["get_result"] >= 3
    # The declared schema: every column in every row; the API's fields mapped once.
    assert all(tuple(r) == NAMES for r in rows)
    assert all(r["screenshot"] is None for r in rows)  # not chosen by default
    assert all(r["run_id"] == run_id and r["run_started_at"] for r in rows)
    assert json.loads(by_url["https://shop.test/p/7"]["extra"]) == {
        "content_type": "text/html; charset=utf-8"
    }

    manifest = manifest_of(data)
    assert manifest["run_id"] == run_id and manifest["collection"] == "shop"
    assert manifest["lines"] == 46 and manifest["counts"] == {
        "completed": 43, "failed": 2, "timeout": 1
    }  # fmt: skip
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert manifest["bytes"] == data.stat().st_size
    assert (manifest["expired"], manifest["missing"]) == (0, 0)
    assert leftovers(tmp_path) == []

    run = report["collections"][0]["run"]
    assert run["results"] == {
        "to": str(out), "lines": 46, "bytes": data.stat().st_size, "expired": 0, "missing": 0
    }  # fmt: skip
    failed = {j["url"]: j for j in run["failed_jobs"]}
    assert failed["https://shop.test/blocked"]["custom_id"] == "b"
    assert failed["https://shop.test/blocked"]["block_reason"] == "captcha"
    assert failed["https://shop.test/fail"]["status_code"] == 500
    assert failed["https://shop.test/timeout"]["status"] == "timeout"


def test_the_listing_is_read_while_the_run_goes_on_and_only_when_jobs_finished(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    sprunner.emulator.engine.run_seconds = 3.0
    result, report = sprunner.apply(write_job(tmp_path, job_text(tmp_path / "r", n=200)))
    assert result.exit_code == 0, result.output
    calls = sprunner.calls()
    # At least one listing before the end, and never more listings than polls that could
    # have shown new jobs (pages of 100 with bodies: at most a few per poll).
    assert calls["list_jobs"] >= 2
    assert calls["list_jobs"] <= 3 * calls["get_run"] + 3
    assert report["collections"][0]["run"]["results"]["lines"] == 206


def test_429s_and_dropped_connections_during_the_listing_lose_and_double_nothing(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    faults = sprunner.emulator.faults
    # One of each for sure on the listing (it is called only a few times), then at random.
    added = [
        faults.once("rate-429", route="list_jobs"),
        faults.once("drop-after", route="list_jobs"),
        faults.add("drop-after", 0.2, route="list_jobs"),
        faults.once("rate-429", route="get_result"),
        faults.once("drop-after", route="get_result"),
    ]
    out = tmp_path / "results"
    result, report = sprunner.apply(write_job(tmp_path, job_text(out, n=60)))
    assert result.exit_code == 0, result.output
    [run_id] = run_ids(sprunner.emulator)
    rows = read_rows(data_file(out, "shop", run_id))
    check_one_row_per_job(sprunner, rows, run_id)
    assert all(r["result_unavailable"] is None for r in rows)
    assert added[0].fired == added[1].fired == 1
    assert sprunner.calls()["list_jobs"] >= 3
    assert report["collections"][0]["run"]["results"]["lines"] == 66


def test_results_that_expire_mid_drain_are_counted_warned_and_reported(tmp_path: Path) -> None:
    with running_emulator(mode="simulate", run_seconds=2.0, result_retention=0.4) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        text = job_text(tmp_path / "r", n=60).replace("poll_interval: 0.2s", "poll_interval: 1s")
        result, report = sprunner.apply(write_job(tmp_path, text))
        [run_id] = run_ids(emulator)
    assert result.exit_code == 0, result.output  # max_failed judges jobs, not their bodies
    rows = read_rows(data_file(tmp_path / "r", "shop", run_id))
    check_one_row_per_job(sprunner, rows, run_id)
    expired = [r for r in rows if r["result_unavailable"] == "result_expired"]
    assert expired, "jobs that finished before the first poll must have expired"
    assert all(r["html"] is None for r in expired)
    results = report["collections"][0]["run"]["results"]
    assert (
        results["expired"]
        == len(expired)
        == manifest_of(data_file(tmp_path / "r", "shop", run_id))["expired"]
    )
    assert "expired" in result.output


def test_a_missing_extra_or_a_bad_destination_is_exit_2_before_any_call(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        result = sprunner("apply", str(write_job(tmp_path, job_text("gs://bucket/x"))))
        assert result.exit_code == 2, result.output
        assert "sprunner[gcs]" in result.output and "shop" in result.output
        assert sprunner.calls() == {}
    result = sprunner("apply", str(write_job(tmp_path, job_text("nosuchproto://b/x"))))
    assert result.exit_code == 2, result.output
    assert "shop" in result.output and "Traceback" not in result.output
    assert sprunner.calls() == {}


def test_a_destination_that_cannot_be_written_fails_that_collection_only(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the results directory should be\n")
    text = job_text(blocker / "results", n=3) + job_text(tmp_path / "ok", n=3).split(
        "collections:\n", 1
    )[1].replace("name: shop", "name: other")
    result, report = sprunner.apply(write_job(tmp_path, text))
    assert result.exit_code == 1, result.output
    shop, other = report["collections"]
    assert shop["ok"] is False and "results of run" in shop["error"]
    assert shop["run"]["status"] == "completed" and "results" not in shop["run"]
    assert other["ok"] is True and other["run"]["results"]["lines"] == 9
    assert "cannot write results" in result.output and "Traceback" not in result.output
