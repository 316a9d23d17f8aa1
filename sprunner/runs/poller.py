"""Waiting for one run: poll with backoff until it completes or its timeout passes.

Every run has its own coroutine; all of them share one event loop, one client and one rate
limiter, so waiting on hundreds of runs costs one task each and stays under the limit.

The schedule: first poll after `poll_interval`; then the delay grows by BACKOFF up to
CAP_SECONDS. When a run reports progress, the next poll is planned for when the run should
end at its current pace (a little after it), whether that is sooner or later than the
backoff would say, but never past the cap: a run of 3 s polled first at 1 s is polled once
more, just after its end, instead of three more times on the backoff. So a batch finishes
close to when its slowest run does, with about two polls per run. No poll is ever planned
past the deadline; at the deadline one last poll decides between completed and timed_out
(the run goes on remotely).

No poll may outlast the deadline by more than LAST_POLL_GRACE: an API that accepts the
connection and never answers would otherwise hold the wait for the client's timeout times
its retries, minutes past the `timeout` the job file asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sprunner.api.client import ApiClient
from sprunner.api.errors import TransientApiError
from sprunner.api.models import Run

BACKOFF = 1.6
CAP_SECONDS = 30.0
# Never plan a poll sooner than this after the previous one, however close the end looks.
MIN_DELAY = 0.25
# How long the poll at (or just before) the deadline may take to answer.
LAST_POLL_GRACE = 5.0


@dataclass(frozen=True)
class Waited:
    run: Run
    timed_out: bool


def next_delay(
    run: Run,
    *,
    backoff_delay: float,
    elapsed: float,
    cap: float = CAP_SECONDS,
) -> float:
    """The delay before the next poll: the predicted end when the pace is known, else the
    backoff; never more than `cap`."""
    done = run.success_requests + run.failed_requests + run.timeout_requests
    if run.total_requests > 0 and 0 < done < run.total_requests and elapsed > 0:
        remaining = elapsed * (run.total_requests - done) / done
        # A little past the predicted end: a poll that lands just before it is wasted.
        return max(MIN_DELAY, min(cap, remaining * 1.1 + 0.1))
    return min(cap, backoff_delay)


async def wait_for_run(
    client: ApiClient,
    run: Run,
    *,
    name: str,
    poll_interval: float,
    deadline: float,
    started: float,
    on_update: Callable[[Run], None] = lambda run: None,
    on_poll: Callable[[Run], Awaitable[None]] | None = None,
    max_delay: float | None = None,
) -> Waited:
    """Poll `run` until it completes or `deadline` (event-loop time) passes.

    `started` is when the run began, in event-loop time (for the pace estimate).
    `on_poll` is awaited after each answered poll, before the next is planned: work that
    follows the run's progress (draining its results) shares this loop and its client.
    `max_delay` caps the delay between polls in place of CAP_SECONDS.
    """
    loop = asyncio.get_running_loop()
    delay = poll_interval
    backoff_delay = poll_interval
    while not run.done:
        now = loop.time()
        if now >= deadline:
            return Waited(run, timed_out=True)
        await asyncio.sleep(min(delay, deadline - now))
        bound = max(deadline - loop.time(), LAST_POLL_GRACE)
        try:
            run = await asyncio.wait_for(
                client.get_run(run.collection_id, run.run_id, name=name), bound
            )
            _raise_if_cancelled()
        except (TransientApiError, asyncio.TimeoutError):
            pass  # the client already retried; keep waiting rather than give up on the run
        else:
            on_update(run)
            if on_poll is not None:
                await on_poll(run)
        cap = max(CAP_SECONDS, poll_interval) if max_delay is None else max_delay
        backoff_delay = min(backoff_delay * BACKOFF, cap)
        delay = next_delay(run, backoff_delay=backoff_delay, elapsed=loop.time() - started, cap=cap)
    return Waited(run, timed_out=False)


def _raise_if_cancelled() -> None:
    """Python 3.10/3.11's `asyncio.wait_for` returns the inner result when the outer task
    is cancelled just as that result arrives, dropping the cancellation: the poll loop
    would then go on until the run ends, long after SIGINT/SIGTERM asked it to stop."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # 3.11+; 3.10 cannot tell
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError
