"""Waiting calls are served by priority: a due poll, then a run start, then the rest."""

from __future__ import annotations

import asyncio

from sprunner.api.window import POLL, START, WRITE, CallWindow, priority_of

from .helpers import run


def test_a_poll_goes_before_starts_and_creates_queued_before_it() -> None:
    async def go() -> list[str]:
        window = CallWindow(1, start=1)
        held = await window.acquire()
        served: list[str] = []

        async def call(label: str, priority: int) -> None:
            started = await window.acquire(priority)
            served.append(label)
            window.release(started, signal="neutral")

        tasks = [
            asyncio.ensure_future(call(label, priority))
            for label, priority in [
                ("create-1", WRITE),
                ("start-1", START),
                ("create-2", WRITE),
                ("poll-1", POLL),
                ("start-2", START),
                ("poll-2", POLL),
            ]
        ]
        await asyncio.sleep(0)  # every call is waiting now
        window.release(held, signal="neutral")
        await asyncio.gather(*tasks)
        return served

    assert run(go()) == ["poll-1", "poll-2", "start-1", "start-2", "create-1", "create-2"]


def test_a_cancelled_waiter_neither_takes_nor_blocks_a_slot() -> None:
    async def go() -> tuple[int, int]:
        window = CallWindow(1, start=1)
        held = await window.acquire()
        cancelled = asyncio.ensure_future(window.acquire(POLL))
        waiting = asyncio.ensure_future(window.acquire(WRITE))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        window.release(held, signal="neutral")
        started = await asyncio.wait_for(waiting, 1)
        window.release(started, signal="neutral")
        # With nobody left waiting, a new call gets its slot at once.
        again = await asyncio.wait_for(window.acquire(START), 1)
        window.release(again, signal="neutral")
        return window.in_flight, len([t for t in (cancelled, waiting) if t.cancelled()])

    assert run(go()) == (0, 1)


def test_priorities_of_the_client_calls() -> None:
    assert priority_of("get run") == POLL
    assert priority_of("start run") == START
    writes = ("create collection", "update collection", "list runs")
    assert {priority_of(call) for call in writes} == {WRITE}


def test_while_a_rate_limit_binds_polls_go_after_starts_and_creates() -> None:
    """Every call waits for a token then: starting runs first makes them end first, and a
    later poll still finds its run done (bench/README figure 2)."""
    from sprunner.api.window import LATE_POLL

    assert priority_of("get run", rate_bound=True) == LATE_POLL > WRITE
    assert priority_of("start run", rate_bound=True) == START
    assert priority_of("create collection", rate_bound=True) == WRITE


def test_the_limiter_binds_only_while_callers_queue_for_the_rate() -> None:
    from sprunner.api.limiter import RateLimiter

    now = [1000.0]
    limiter = RateLimiter(max_rps=10, clock=lambda: now[0])
    assert not limiter.throttling  # nobody waits yet

    async def take(count: int) -> None:
        # Reserve `count` slots without sleeping through them: the clock stands still.
        for _ in range(count):
            waiter = asyncio.ensure_future(limiter.acquire())
            await asyncio.sleep(0)
            waiter.cancel()

    run(take(3))
    assert limiter.throttling  # slots reserved ahead of now
    now[0] += 1.0  # the reserved slots are past
    assert not limiter.throttling
    assert not RateLimiter(clock=lambda: now[0]).throttling  # no rate known: never binds
