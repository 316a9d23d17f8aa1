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
