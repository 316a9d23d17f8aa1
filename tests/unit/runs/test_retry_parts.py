"""The pure parts of retrying: matching failed jobs to requests, the ledger, the brake."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sprunner.api.models import Job
from sprunner.retry import ledger
from sprunner.retry.companion import match
from sprunner.runs.ledger import CreditBrake
from sprunner.state import State


def job(url: str, custom_id: str | None = None, status: str = "failed") -> Job:
    return Job(
        job_id=f"j-{url}-{custom_id}",
        run_id="r",
        collection_id="c",
        status=status,  # type: ignore[arg-type]
        url=url,
        custom_id=custom_id,
    )


REQUESTS = (
    {"url": "https://a/1"},
    {"url": "https://a/2", "custom_id": "two"},
    {"url": "https://a/2", "custom_id": "deux", "browser": True},
    {"url": "https://a/3", "format": "markdown"},
    {"url": "https://a/3", "format": "html"},
)


def test_failed_jobs_match_requests_by_url_and_custom_id_in_file_order() -> None:
    matched = match(REQUESTS, [job("https://a/2", "deux"), job("https://a/1")])
    assert matched.requests == (REQUESTS[0], REQUESTS[2])
    assert matched.unmatched == ()


def test_a_job_matching_no_request_is_unmatched_not_retried() -> None:
    stranger = job("https://a/2", "zwei")
    matched = match(REQUESTS, [stranger, job("https://gone/")])
    assert matched.requests == ()
    assert [j.url for j in matched.unmatched] == ["https://a/2", "https://gone/"]


def test_requests_sharing_a_key_are_retried_as_often_as_jobs_failed() -> None:
    assert match(REQUESTS, [job("https://a/3")]).requests == (REQUESTS[3],)
    both = match(REQUESTS, [job("https://a/3"), job("https://a/3", status="timeout")])
    assert both.requests == (REQUESTS[3], REQUESTS[4])


def test_the_brake_takes_what_fits_and_refuses_the_rest() -> None:
    async def main() -> None:
        brake = CreditBrake(10, committed=6)
        assert await brake.take(3) is None
        refused = await brake.take(2)
        assert refused is not None and "only 1 of --max-credits 10" in refused
        assert await brake.take(1) is None
        assert await CreditBrake(None, committed=10**9).take(5) is None

    asyncio.run(main())


def test_the_brake_counts_first_runs_the_ledger_will_still_start() -> None:
    """A retry asks before a later collection decided: it waits for that decision, and the
    first run the ledger then allows is counted, whichever answered first."""
    from sprunner.runs.ledger import CreditLedger

    async def main() -> None:
        ledger = CreditLedger([3, 2], 6)  # both first runs fit; a retry of 2 then does not
        brake = CreditBrake(6, first_runs=ledger.committed)
        ledger.resolve(0, True)
        asked = asyncio.ensure_future(brake.take(2))
        await asyncio.sleep(0)
        assert not asked.done()  # collection 1 has not decided yet
        ledger.resolve(1, True)
        refused = await asked
        assert refused is not None and "only 1 of --max-credits 6" in refused
        assert "first runs 5" in refused
        assert await brake.take(1) is None  # what is left still fits

    asyncio.run(main())


def test_the_ledger_survives_a_reopen_and_belongs_to_one_run(tmp_path: Path) -> None:
    state = State(tmp_path, "http://api", key="k")
    state.update("shop", id="c1")
    book = ledger.Ledger("run-1").with_attempt(ledger.Attempt(1, "c2", None))
    book = book.with_attempt(ledger.Attempt(1, "c2", "retry-run-1"))
    ledger.save(state, "shop", book)
    again = State(tmp_path, "http://api", key="k", persist=False)
    assert ledger.load(again, "shop", "run-1") == book
    assert ledger.load(again, "shop", "run-2") == ledger.Ledger("run-2")


def test_metrics_count_requests_and_credits_after_the_retries() -> None:
    from sprunner.report.metrics import from_outcome
    from sprunner.report.outcome import (
        ApplyOutcome,
        CollectionOutcome,
        FinalCounts,
        RetryOutcome,
        RunOutcome,
    )

    retried = RunOutcome(
        "completed",
        run_id="r1",
        total_requests=4,
        success_requests=1,
        failed_requests=3,
        credits=1 + 2,  # charged: 1 success in the first run, 2 in the retry
        retries=(RetryOutcome(1, "completed", "r2", 3, 2, 1, 0, credits=2),),
        final=FinalCounts(4, 3, 1, 0),
    )
    outcome = ApplyOutcome(
        "http://api",
        0.0,
        1.0,
        (CollectionOutcome("shop", "j.yaml", "unchanged", "c1", 4, retried),),
    )
    [shop] = from_outcome(outcome, exit_code=1, calls=()).collections
    assert (shop.success, shop.failed, shop.timeout, shop.credits) == (3, 1, 0, 3)
