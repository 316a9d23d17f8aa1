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

The first poll waits `poll_interval`, or longer when this apply's runs of the same size have
already shown how long such a run takes (`PaceBook`): with hundreds of like collections, the
first few runs' progress tells when the others will end, and a poll that would only say "in
progress" is not sent. A run is never polled sooner than `poll_interval` after its start.

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


# The predictions of run length kept per run size (the latest ones: the account's pace moves).
PACE_SAMPLES = 16


class PaceBook:
    """How long this apply's runs take, by their number of requests, as their polls showed.

    Shared by the waits of one apply (one event loop: no lock needed). Only runs of the same
    size are compared: a size-independent guess would poll a small run far too late."""

    def __init__(self) -> None:
        self._lengths: dict[int, list[float]] = {}

    def observe(self, run: Run, elapsed: float) -> None:
        """A poll of `run`, `elapsed` seconds after its start, showed its progress."""
        done = run.success_requests + run.failed_requests + run.timeout_requests
        if run.total_requests > 0 and 0 < done < run.total_requests and elapsed > 0:
            lengths = self._lengths.setdefault(run.total_requests, [])
            lengths.append(elapsed * run.total_requests / done)
            del lengths[:-PACE_SAMPLES]

    def expected(self, total_requests: int) -> float | None:
        """The median predicted length of a run of this size, if two runs were seen."""
        lengths = sorted(self._lengths.get(total_requests, ()))
        return lengths[len(lengths) // 2] if len(lengths) >= 2 else None


def predicted_end(run: Run, *, started: float, pace: PaceBook | None, cap: float) -> float | None:
    """When (event-loop time) like runs say `run` ends, a little after; None if unknown."""
    expected = None if pace is None else pace.expected(run.total_requests)
    return None if expected is None else started + min(cap, expected * 1.1 + 0.1)


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
    on_update: Callable[[Run], object] = lambda run: None,
    on_poll: Callable[[Run], Awaitable[None]] | None = None,
    max_delay: float | None = None,
    pace: PaceBook | None = None,
) -> Waited:
    """Poll `run` until it completes or `deadline` (event-loop time) passes.

    `started` is when the run began, in event-loop time (for the pace estimate).
    `on_poll` is awaited after each answered poll, before the next is planned: work that
    follows the run's progress (draining its results) shares this loop and its client.
    `max_delay` caps the delay between polls in place of CAP_SECONDS.
    `pace`: the apply's shared record of run lengths, read for the first poll and fed by
    every poll.
    """
    loop = asyncio.get_running_loop()
    cap = max(CAP_SECONDS, poll_interval) if max_delay is None else max_delay
    delay = backoff_delay = poll_interval
    first = True
    while not run.done:
        now = loop.time()
        if now >= deadline:
            return Waited(run, timed_out=True)
        await asyncio.sleep(min(delay, deadline - now))
        end = predicted_end(run, started=started, pace=pace, cap=cap) if first else None
        if end is not None:
            # Like runs, polled meanwhile, say this one is not over: no "in progress" poll.
            await asyncio.sleep(max(0.0, min(end, deadline) - loop.time()))
        first = False
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
            if pace is not None:
                pace.observe(run, loop.time() - started)
            if on_poll is not None:
                await on_poll(run)
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
