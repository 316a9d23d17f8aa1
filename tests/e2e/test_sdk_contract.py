"""The vendor SDK (`scrapingpros`, in the bench extra) against the emulator, unchanged.

SPEC §6: `Batch.iter_results`, `get_job_result`, `get_run_jobs` and `iter_run_jobs` must
work against the emulator as they do against the API. The SDK is a third reading of the
contract: where it and the emulator disagree, one of them misread it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from sprunner.emulator.bodies import RESULT_INLINE_CAP
from sprunner.emulator.server import EmulatorHandle, running_emulator

scrapingpros: Any = pytest.importorskip(
    "scrapingpros", reason="the vendor SDK is not installed (pip install -e '.[bench]')"
)

LARGE = RESULT_INLINE_CAP + 40_000
ITEMS = [{"url": f"https://shop.test/p/{i}", "custom_id": f"p{i}"} for i in range(20)]
ITEMS += [
    {"url": f"https://shop.test/big?size={LARGE}", "custom_id": "big"},
    {"url": "https://shop.test/fail", "custom_id": "fail"},
    {"url": "https://shop.test/timeout", "custom_id": "slow"},
]


@pytest.fixture
def emulator_sdk() -> Iterator[tuple[EmulatorHandle, Any]]:
    with (
        running_emulator(run_seconds=1.0) as handle,
        scrapingpros.SyncClient(handle.api_key, base_url=handle.url, max_retries=2) as client,
    ):
        yield handle, client


def test_batch_iter_results_streams_every_job_once(
    emulator_sdk: tuple[EmulatorHandle, Any],
) -> None:
    _, client = emulator_sdk
    batch = client.submit_batch("sdk-batch", ITEMS)
    # Polled while the run goes on: jobs finish in pairs within one millisecond, so the
    # SDK's high-water mark on completed_at meets ties, and must still see every job.
    results = list(batch.iter_results(poll_interval=0.05, timeout=30))
    ids = Counter(r.custom_id for r in results)
    assert ids == Counter(item["custom_id"] for item in ITEMS), "each job exactly once"
    by_id = {r.custom_id: r for r in results}
    assert by_id["p3"].statusCode == 200 and by_id["p3"].guidance.success is True
    assert by_id["p3"].html and by_id["p3"].markdown
    big = by_id["big"]  # over the inline cap: fetched alone by the SDK
    assert big.html is not None and len(big.html) > RESULT_INLINE_CAP // 2
    assert by_id["fail"].guidance.success is False and by_id["slow"].guidance.success is False
    assert batch.success_count == 21 and batch.failed_count == 2


def test_run_jobs_listing_and_single_results(emulator_sdk: tuple[EmulatorHandle, Any]) -> None:
    _, client = emulator_sdk
    batch = client.submit_batch("sdk-jobs", ITEMS)
    cid, rid = batch.collection_id, batch.run_id
    deadline = time.monotonic() + 30
    while client.get_run(cid, rid).status != "completed":
        assert time.monotonic() < deadline, "the run did not complete"
        time.sleep(0.05)
    listed = client.get_run_jobs(cid, rid, limit=7).items
    assert len(listed) == len(ITEMS) and len({j.job_public_id for j in listed}) == len(ITEMS)
    streamed = list(client.iter_run_jobs(cid, rid, page_size=5, include_results=True))
    assert [j.job_public_id for j in streamed] == [j.job_public_id for j in listed]
    by_id = {j.custom_id: j for j in streamed}
    assert by_id["p0"].result is not None and by_id["p0"].result.custom_id == "p0"
    assert by_id["big"].result is None and by_id["fail"].status == "failed"
    assert by_id["slow"].status == "timeout" and by_id["p0"].is_success is True
    failed = client.get_run_jobs(cid, rid, status_filter=["failed", "timeout"]).items
    assert {j.custom_id for j in failed} == {"fail", "slow"}
    newest = max(j.completed_at for j in listed)
    assert client.get_run_jobs(cid, rid, since_completed_at=newest).items == []
    earlier = newest - dt.timedelta(milliseconds=1)
    later = client.get_run_jobs(cid, rid, since_completed_at=earlier).items
    assert later and all(j.completed_at > earlier for j in later)
    big = client.get_job_result(cid, rid, by_id["big"].job_public_id)
    assert big.custom_id == "big" and big.statusCode == 200 and len(big.html) > 100_000
    with pytest.raises(scrapingpros.JobNotFound):
        client.get_job_result(cid, rid, "not-a-job")


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("https://shop.test/a", {"run_seconds": 60}, "JobResultPending"),
        ("https://shop.test/a", {"run_seconds": 0, "result_retention": 0.0}, "JobResultExpired"),
        ("https://shop.test/result-lost", {"run_seconds": 0}, "JobResultLost"),
    ],
)
def test_result_errors_are_typed_by_the_sdk(url: str, options: dict[str, Any], error: str) -> None:
    with (
        running_emulator(**options) as handle,
        scrapingpros.SyncClient(handle.api_key, base_url=handle.url, max_retries=0) as client,
    ):
        batch = client.submit_batch("sdk-errors", [{"url": url}])
        (job,) = client.get_run_jobs(batch.collection_id, batch.run_id).items
        with pytest.raises(getattr(scrapingpros, error)):
            client.get_job_result(batch.collection_id, batch.run_id, job.job_public_id)
