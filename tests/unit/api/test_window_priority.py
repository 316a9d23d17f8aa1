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
