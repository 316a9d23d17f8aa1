"""The window of calls in flight, driven by a fake clock: no test sleeps."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.api.window import CallWindow

from .helpers import run


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _busy_round(window: CallWindow, clock: Clock, latency: float, *, signal: str = "ok") -> None:
    """Fill the window (so that it binds), let `latency` pass, answer every call."""

    async def go() -> None:
        clock.now += 0.001  # the next round is sent a moment after the last answers
        size = window.size
        starts = [await window.acquire() for _ in range(size)]
        clock.now += latency
        for started in starts:
            window.release(started, signal=signal)  # type: ignore[arg-type]

    run(go())


def test_starts_at_8_and_grows_while_answers_stay_fast_up_to_the_cap() -> None:
    clock = Clock()
    window = CallWindow(64, clock=clock)
    assert window.size == 8
    sizes = []
    for _ in range(6):
        _busy_round(window, clock, 0.044)
        sizes.append(window.size)
    assert sizes == sorted(sizes) and sizes[-1] == 64, sizes
    assert window.in_flight == 0


def test_the_start_never_exceeds_a_smaller_cap() -> None:
    window = CallWindow(3, clock=Clock())
    assert window.size == 3
    with pytest.raises(ValueError):
        CallWindow(0)


def test_an_idle_window_does_not_grow() -> None:
    """Fast answers while callers never wait say nothing about a larger window."""
    clock = Clock()
    window = CallWindow(64, clock=clock)

    async def go() -> None:
        for _ in range(200):
            started = await window.acquire()
            clock.now += 0.01
            window.release(started, signal="ok")

    run(go())
    assert window.size == 8


def test_429_5xx_or_transport_failures_halve_it_once_per_round() -> None:
    signal = "congestion"
    clock = Clock()
    window = CallWindow(64, clock=clock)
    for _ in range(2):
        _busy_round(window, clock, 0.044)
    before = window.size
    # Every answer of the round is a 429: the calls were all in flight before the first cut,
    # so the window is cut once, not once per answer.
    _busy_round(window, clock, 0.044, signal=signal)
    assert window.size == before // 2
    _busy_round(window, clock, 0.044, signal=signal)
    assert window.size == before // 4


def test_after_a_cut_it_grows_by_about_one_per_round() -> None:
    clock = Clock()
    window = CallWindow(64, clock=clock)
    _busy_round(window, clock, 0.044, signal="congestion")
    assert window.size == 4
    sizes = []
    for _ in range(4):
        _busy_round(window, clock, 0.044)
        sizes.append(window.size)
    assert sizes == [5, 6, 7, 8], sizes


def test_it_never_goes_below_one() -> None:
    clock = Clock()
    window = CallWindow(8, clock=clock)
    for _ in range(10):
        _busy_round(window, clock, 0.01, signal="congestion")
    assert window.size == 1


def test_rising_latency_does_not_shrink_it() -> None:
    """Issue #28: a server that answers in 3 ms idle and 44 ms busy is not congested."""
    clock = Clock()
    window = CallWindow(64, clock=clock)
    for _ in range(3):
        _busy_round(window, clock, 0.003)
    grown = window.size
    for _ in range(10):
        _busy_round(window, clock, 0.200)  # far slower answers, and no other sign
    assert window.size >= grown


@settings(max_examples=200, deadline=None)
@given(
    cap=st.integers(min_value=1, max_value=128),
    rounds=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=30.0, allow_nan=False),  # answer time
            st.sampled_from(["ok", "ok", "ok", "neutral", "congestion"]),
        ),
        max_size=40,
    ),
)
def test_only_the_server_s_signals_ever_shrink_it_whatever_the_answer_times(
    cap: int, rounds: list[tuple[float, str]]
) -> None:
    """Over any sequence of answer times, the window shrinks only on a 429, a 5xx or a
    transport failure ("congestion"): never on latency, so never below what the rate limit
    allows (the rate limiter alone paces calls, on the API's word)."""
    clock = Clock()
    window = CallWindow(cap, clock=clock)
    size = window.size
    for latency, signal in rounds:
        _busy_round(window, clock, latency, signal=signal)
        if signal != "congestion":
            assert window.size >= size, (latency, signal)
        assert 1 <= window.size <= cap and window.in_flight == 0
        size = window.size


def test_a_neutral_answer_neither_grows_nor_cuts() -> None:
    clock = Clock()
    window = CallWindow(64, clock=clock)
    _busy_round(window, clock, 0.04, signal="neutral")
    assert window.size == 8


def test_callers_beyond_the_window_wait_and_are_released_in_order() -> None:
    clock = Clock()
    window = CallWindow(2, start=2, clock=clock)
    order: list[int] = []

    async def caller(i: int) -> None:
        started = await window.acquire()
        order.append(i)
        await asyncio.sleep(0)
        window.release(started, signal="neutral")

    async def go() -> None:
        first = await window.acquire()
        second = await window.acquire()
        tasks = [asyncio.create_task(caller(i)) for i in range(4)]
        await asyncio.sleep(0)
        assert window.in_flight == 2 and order == []
        window.release(first, signal="neutral")
        window.release(second, signal="neutral")
        await asyncio.gather(*tasks)

    run(go())
    assert order == [0, 1, 2, 3] and window.in_flight == 0


def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    window = CallWindow(1, start=1, clock=Clock())

    async def go() -> None:
        held = await window.acquire()
        waiting = asyncio.create_task(window.acquire())
        after = asyncio.create_task(window.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        window.release(held, signal="neutral")
        started = await asyncio.wait_for(after, 1.0)
        assert window.in_flight == 1
        window.release(started, signal="neutral")

    run(go())
    assert window.in_flight == 0
