"""The shared limiter: one 429 slows every caller; the rate is learned and probed back up."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from sprunner.api.limiter import DECREASE_FACTOR, RateLimiter

from .helpers import Script, client, reply, run


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_unthrottled_until_the_first_429() -> None:
    limiter = RateLimiter()
    assert limiter.rate is None

    async def go() -> float:
        start = time.monotonic()
        for _ in range(200):
            await limiter.acquire()
        return time.monotonic() - start

    assert run(go()) < 0.2


def test_a_429_cuts_the_rate_to_a_fraction_of_the_observed_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(20):  # 20 successes within the last second
        clock.now += 0.04
        limiter.on_success()
    limiter.on_rate_limited(2.0)
    assert limiter.rate == pytest.approx(DECREASE_FACTOR * 20)
    assert limiter.paused_for == pytest.approx(2.0)
    # Answers to calls already in flight do not cut again.
    limiter.on_rate_limited(2.0)
    assert limiter.rate == pytest.approx(DECREASE_FACTOR * 20)


def test_a_429_before_enough_successes_only_pauses() -> None:
    limiter = RateLimiter(clock=FakeClock())
    limiter.on_success()
    limiter.on_rate_limited(0.5)
    assert limiter.rate is None and limiter.paused_for == pytest.approx(0.5)


def test_successes_probe_the_rate_back_up_only_while_it_binds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(10):
        clock.now += 0.1
        limiter.on_success()
    limiter.on_rate_limited(0.0)
    learned = limiter.rate
    assert learned is not None
    clock.now += 5.0  # idle: the old successes leave the window
    for _ in range(3):
        clock.now += 1.0
        limiter.on_success()
    assert limiter.rate == learned, "an idle limiter must not drift upwards"
    for _ in range(100):
        clock.now += 1.0 / learned
        limiter.on_success()
    assert limiter.rate is not None and limiter.rate > learned


def test_fixed_ceiling_spaces_calls_evenly() -> None:
    limiter = RateLimiter(max_rps=50)

    async def go() -> float:
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(11)))
        return time.monotonic() - start

    elapsed = run(go())
    # 10 intervals of 20 ms, less the two slots that may be taken late (UNKNOWN_CATCH_UP).
    assert 0.14 <= elapsed < 0.6


def test_invalid_ceiling() -> None:
    with pytest.raises(ValueError):
        RateLimiter(max_rps=0)


def test_one_429_pauses_every_caller_of_the_shared_limiter() -> None:
    """Eight concurrent callers; the third request gets a 429: nobody sends during the pause."""
    stamps: list[float] = []
    limited_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        if len(stamps) == 3:
            limited_at.append(stamps[-1])
            return reply(429, {"detail": "slow down"}, **{"Retry-After": "0.3"})
        return reply(200, [])

    limiter = RateLimiter()

    async def go() -> None:
        # Two clients on one limiter, as apply and the poller would share it.
        async with (
            client(Script([handler]), limiter=limiter, max_backoff=5.0) as one,
            client(Script([handler]), limiter=limiter, max_backoff=5.0) as two,
        ):
            await asyncio.gather(*(api.list_collections() for api in (one, two) for _ in range(8)))
            assert one.rate_limited + two.rate_limited == 1

    run(go())
    after = [t for t in stamps if t > limited_at[0]]
    assert after, "calls must go on after the pause"
    assert min(after) >= limited_at[0] + 0.29


def test_the_shared_limiter_learns_a_rate_from_a_429_after_steady_successes() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 12:
            return reply(429, {"detail": "slow down"}, **{"Retry-After": "0"})
        return reply(200, [])

    limiter = RateLimiter()

    async def go() -> None:
        async with client(Script([handler]), limiter=limiter) as api:
            for _ in range(12):
                await api.list_collections()
                await asyncio.sleep(0.01)

    run(go())
    assert limiter.rate is not None and limiter.rate > 5
