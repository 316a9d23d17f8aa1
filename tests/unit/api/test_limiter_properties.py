"""The limiter is total: any order of answers, at any times, leaves it sane (fake clock).

Issue #23: a 429 that came more than 10 s after the first calls, before any rate was known
(the first poll of a run with `poll_interval: 12s`), failed an assertion and exited 70.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sprunner.api.limiter import MAX_PAUSE, MIN_RATE, RATE_LIMIT_WINDOW, RateLimiter

from .helpers import Script, client, reply, run


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_429_long_after_the_first_calls_with_no_rate_known_only_pauses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(5):  # the creates and starts of a small apply
        limiter.on_success()
    clock.now += 12.0  # then the first poll, `poll_interval: 12s` later, is answered 429
    limiter.on_rate_limited(2.0)
    assert limiter.rate is None and limiter.paused_for == 2.0


def test_the_same_through_the_client_is_retried_not_a_crash() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    script = Script([reply(200, [])] * 5 + [reply(429, {}, **{"Retry-After": "0"}), reply(200, [])])

    async def go() -> None:
        async with client(script, limiter=limiter) as api:
            for _ in range(5):
                await api.list_collections()
            clock.now += 12.0
            assert await api.list_collections() == []

    run(go())
    assert len(script.seen) == 7


number = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=5000),
)
event = st.one_of(
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=120)),
    st.tuples(st.just("success"), st.none()),
    st.tuples(st.just("429"), number),
    st.tuples(st.just("headers"), st.tuples(number, number, number)),
)


@settings(max_examples=400, deadline=None)
@given(
    max_rps=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1000)),
    events=st.lists(event, max_size=60),
)
def test_any_order_of_answers_leaves_a_sane_limiter(
    max_rps: float | None, events: list[tuple[str, object]]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(max_rps, clock=clock, wall=lambda: 1.7e9 + clock.now)
    for kind, value in events:
        if kind == "wait":
            assert isinstance(value, float)
            clock.now += value
        elif kind == "success":
            limiter.on_success()
        elif kind == "429":
            limiter.on_rate_limited(value)  # type: ignore[arg-type]
        else:
            # `rate_headers` never gives a number that is not finite.
            values = value if isinstance(value, tuple) else ()
            finite = [v if v is None or math.isfinite(v) else None for v in values]
            limiter.on_rate_headers(*finite)
        rate = limiter.rate
        floor = MIN_RATE if max_rps is None else min(MIN_RATE, max_rps)
        assert rate is None or (math.isfinite(rate) and rate >= floor)
        if max_rps is not None:
            assert rate is not None and rate <= max_rps
        # Never paused longer than a 429 or an empty budget can ask for.
        assert 0.0 <= limiter.paused_for <= max(MAX_PAUSE, RATE_LIMIT_WINDOW) + 1e-6


def test_slots_missed_while_the_budget_has_room_are_taken_late() -> None:
    """Issue #28: with a heavy tail every call slot may be busy when a rate slot passes; the
    server's bucket kept that token, and its Remaining says so: the slot is not lost."""
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(60 * 30, 30, 0)  # 30 a second, and a second's worth left

    async def take(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()  # never sleeps here: the slots are all in the past

    clock.now += 0.5  # nobody could send for half a second
    run(take(15))  # then 15 go at once: the 15 slots of that half second, taken late
    assert limiter._next_slot <= clock.now + 1e-9


def test_no_late_slots_when_the_shared_budget_is_empty() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(60 * 30, 30, 0)
    limiter.on_rate_headers(60 * 30, 2, 0)  # others spend it: 2 left, fewer than in flight
    run(limiter.acquire())
    clock.now += 0.5
    run(limiter.acquire())
    assert limiter._next_slot == clock.now + 1 / 30  # spaced from now: nothing taken late


def test_a_reset_far_away_is_waited_for_at_most_the_client_s_cap() -> None:
    """A hostile `X-RateLimit-Reset` (a Unix time in the year 5138) with no budget left."""
    script = Script(
        [
            reply(
                200,
                [],
                **{
                    "X-RateLimit-Limit": "60",
                    "X-RateLimit-Remaining": "-5",
                    "X-RateLimit-Reset": "99999999999999",
                },
            )
        ]
    )
    limiter = RateLimiter()

    async def go() -> None:
        async with client(script, limiter=limiter, max_backoff=2.0) as api:
            await api.list_collections()

    run(go())
    assert 0 < limiter.paused_for <= 2.0
