from __future__ import annotations

import asyncio
from typing import cast

import pytest

from sprunner.api.client import ApiClient
from sprunner.api.models import Run
from sprunner.runs import poller
from sprunner.runs.poller import CAP_SECONDS, MIN_DELAY, next_delay


def run(done: int, total: int = 100) -> Run:
    return Run("r", "c", "in_progress", total, done, 0, 0)


def test_backoff_when_no_progress_is_known() -> None:
    assert next_delay(run(0), backoff_delay=8.0, elapsed=2.0) == 8.0


def test_poll_lands_just_after_the_predicted_end() -> None:
    # Half done after 10 s: about 10 s to go.
    assert next_delay(run(50), backoff_delay=30.0, elapsed=10.0) == 11.1


def test_prediction_may_pass_the_backoff_but_never_the_cap_nor_goes_below_the_floor() -> None:
    # A third done after 1 s: the next poll just after the end, not on the 1.6 s backoff.
    assert next_delay(run(33), backoff_delay=1.6, elapsed=1.0) == pytest.approx(2.3333, abs=1e-3)
    assert next_delay(run(1), backoff_delay=5.0, elapsed=10.0) == CAP_SECONDS
    assert next_delay(run(1), backoff_delay=5.0, elapsed=10.0, cap=60.0) == 60.0
    assert next_delay(run(99), backoff_delay=5.0, elapsed=0.01) == MIN_DELAY


def test_backoff_never_passes_the_cap() -> None:
    assert next_delay(run(0), backoff_delay=50.0, elapsed=2.0, cap=30.0) == 30.0


class _SilentApi:
    """An API that accepts every poll and never answers it."""

    polls = 0

    async def get_run(self, collection_id: str, run_id: str, *, name: str) -> Run:
        self.polls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_a_poll_that_never_answers_ends_at_the_deadline_plus_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(poller, "LAST_POLL_GRACE", 0.2)
    api = _SilentApi()

    async def wait() -> tuple[poller.Waited, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        waited = await poller.wait_for_run(
            cast(ApiClient, api),
            run(0),
            name="c",
            poll_interval=0.05,
            deadline=start + 0.3,
            started=start,
        )
        return waited, loop.time() - start

    waited, elapsed = asyncio.run(wait())
    assert waited.timed_out and waited.run.status == "in_progress"
    assert api.polls == 1 and elapsed < 0.3 + 0.2 + 0.2


# -- the pace of like runs -------------------------------------------------------------------
def test_the_pace_book_predicts_a_size_from_two_runs_of_that_size_only() -> None:
    pace = poller.PaceBook()
    pace.observe(run(25), elapsed=1.0)  # a quarter done after 1 s: 4 s long
    assert pace.expected(100) is None  # one sample is not a pace
    pace.observe(run(50), elapsed=1.5)  # 3 s long
    pace.observe(run(20), elapsed=1.0)  # 5 s long
    assert pace.expected(100) == 4.0  # the median
    assert pace.expected(10) is None  # another size learns nothing from these
    pace.observe(run(0), elapsed=1.0)  # no progress, and a finished run, tell no pace
    pace.observe(Run("r", "c", "completed", 100, 100, 0, 0), elapsed=9.0)
    assert pace.expected(100) == 4.0


class _TimedApi:
    """Runs that each last LENGTH seconds from their start, progressing evenly."""

    LENGTH = 0.6

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.polls: dict[str, int] = {}

    def start(self, run_id: str) -> Run:
        self.started[run_id] = asyncio.get_running_loop().time()
        return Run(run_id, "c", "in_progress", 60, 0, 0, 0)

    async def get_run(self, collection_id: str, run_id: str, *, name: str) -> Run:
        self.polls[run_id] = self.polls.get(run_id, 0) + 1
        elapsed = asyncio.get_running_loop().time() - self.started[run_id]
        done = min(60, int(60 * elapsed / self.LENGTH))
        return Run(run_id, "c", "completed" if done == 60 else "in_progress", 60, done, 0, 0)


def test_runs_started_after_like_runs_were_polled_wait_for_their_end() -> None:
    """Twenty like runs started 20 ms apart, first poll after 0.2 s of 0.6 s runs: the
    first ones are polled twice (once in progress, once after the end); once two of them
    showed their pace, the others are polled once, just after their end."""
    api = _TimedApi()
    pace = poller.PaceBook()

    async def one(index: int) -> tuple[poller.Waited, float]:
        await asyncio.sleep(0.02 * index)
        loop = asyncio.get_running_loop()
        started = loop.time()
        waited = await poller.wait_for_run(
            cast(ApiClient, api),
            api.start(f"r{index}"),
            name="c",
            poll_interval=0.2,
            deadline=started + 10,
            started=started,
            pace=pace,
        )
        return waited, loop.time() - started

    async def all_of_them() -> list[tuple[poller.Waited, float]]:
        return await asyncio.gather(*(one(i) for i in range(20)))

    results = asyncio.run(all_of_them())
    assert all(waited.run.status == "completed" for waited, _ in results)
    polls = [api.polls[f"r{i}"] for i in range(20)]
    assert polls[:2] == [2, 2] and sum(polls) <= 20 + 5, polls
    # Waiting for the predicted end costs little time: about 10 % of the run.
    assert max(seconds for _, seconds in results) < _TimedApi.LENGTH * 1.5
