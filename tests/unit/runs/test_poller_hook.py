"""The poller's `on_poll` hook and `max_delay` (used by results delivery, kept generic)."""

from __future__ import annotations

import asyncio
from typing import cast

from sprunner.api.client import ApiClient
from sprunner.api.models import Run
from sprunner.runs import poller


class _Api:
    """Answers polls from a script of runs; the last one repeats."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        self.polls = 0

    async def get_run(self, collection_id: str, run_id: str, *, name: str) -> Run:
        answer = self.runs[min(self.polls, len(self.runs) - 1)]
        self.polls += 1
        return answer


def _run(done: int, status: str = "in_progress") -> Run:
    return Run("r", "c", status, 10, done, 0, 0)  # type: ignore[arg-type]


def test_on_poll_is_awaited_after_every_answered_poll_the_completed_one_included() -> None:
    api = _Api([_run(3), _run(7), _run(10, "completed")])
    seen: list[int] = []

    async def hook(run: Run) -> None:
        await asyncio.sleep(0)
        seen.append(run.success_requests)

    async def wait() -> poller.Waited:
        loop = asyncio.get_running_loop()
        return await poller.wait_for_run(
            cast(ApiClient, api),
            _run(0),
            name="c",
            poll_interval=0.01,
            deadline=loop.time() + 5,
            started=loop.time(),
            on_poll=hook,
            max_delay=0.02,
        )

    waited = asyncio.run(wait())
    assert not waited.timed_out and waited.run.done
    assert seen == [3, 7, 10]


def test_max_delay_caps_the_pace_estimate() -> None:
    # 1 of 10 done after 1 s: the estimate says 9.9 s; a cap of 2 s polls sooner.
    run = _run(1)
    assert poller.next_delay(run, backoff_delay=1.0, elapsed=1.0) > 9
    assert poller.next_delay(run, backoff_delay=1.0, elapsed=1.0, cap=2.0) == 2.0
