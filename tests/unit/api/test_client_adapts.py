"""The client adapts to what answers say: rate headers, the window, and per-call records."""

from __future__ import annotations

import pytest

from sprunner.api.calls import CallRecord, route_template
from sprunner.api.errors import NotFoundError
from sprunner.api.limiter import RATE_LIMIT_WINDOW, RateLimiter, rate_headers

from .helpers import KEY, RUN, Script, client, reply, run

RATE = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "599", "X-RateLimit-Reset": "60"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_answer_with_rate_headers_sets_the_rate() -> None:
    script = Script([reply(200, [], **RATE)])
    limiter = RateLimiter()

    async def go() -> None:
        async with client(script, limiter=limiter) as api:
            await api.list_collections()

    assert limiter.rate is None
    run(go())
    # 600 a minute: 10 a second, from the first answer, without waiting for a 429.
    assert limiter.rate == pytest.approx(600 / RATE_LIMIT_WINDOW)


def test_the_stated_rate_is_a_ceiling_that_probing_does_not_pass() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(120, 100, 30)
    assert limiter.rate == pytest.approx(2.0)
    for _ in range(100):
        clock.now += 0.5  # exactly the stated rate: the limiter binds
        limiter.on_success()
    assert limiter.rate == pytest.approx(2.0)
    # A 429 (another client shares the key) still cuts below the stated rate...
    for _ in range(5):
        clock.now += 0.5
        limiter.on_success()
    limiter.on_rate_limited(1.0)
    cut = limiter.rate
    assert cut is not None and cut < 2.0
    # ...and the next answer's headers do not undo that cut.
    limiter.on_rate_headers(120, 50, 20)
    assert limiter.rate == cut


def test_an_empty_budget_pauses_until_the_reset() -> None:
    limiter = RateLimiter(clock=FakeClock())
    limiter.on_rate_headers(60, 0, 7)
    assert limiter.paused_for == pytest.approx(7.0)
    assert limiter.rate == pytest.approx(1.0)


def test_a_fixed_ceiling_below_the_stated_rate_wins() -> None:
    limiter = RateLimiter(max_rps=0.5, clock=FakeClock())
    limiter.on_rate_headers(600, 599, 60)
    assert limiter.rate == 0.5


@pytest.mark.parametrize(
    ("headers", "parsed"),
    [
        ({}, (None, None, None)),
        (RATE, (600.0, 599.0, 60.0)),
        ({"x-ratelimit-limit": "abc", "X-RateLimit-Remaining": "nan"}, (None, None, None)),
    ],
)
def test_rate_headers_garbled_or_missing_are_ignored(
    headers: dict[str, str], parsed: tuple[float | None, ...]
) -> None:
    assert rate_headers(headers) == parsed


def test_a_429_halves_the_window_and_fast_answers_grow_it_back() -> None:
    script = Script([reply(429, {}, **{"Retry-After": "0"}), reply(200, RUN)])

    async def go() -> tuple[int, int]:
        async with client(script, parallel=32) as api:
            assert api.window.size == 8 and api.window.cap == 32
            await api.get_run("c1", "r1")
            return api.window.size, api.rate_limited

    size, limited = run(go())
    assert limited == 1 and size == 4


def test_each_exchange_is_recorded_without_ids_names_or_secrets() -> None:
    records: list[CallRecord] = []
    script = Script([reply(503, {"detail": KEY}), reply(200, RUN), reply(404, {"detail": "no"})])

    async def go() -> None:
        async with client(script, on_call=records.append) as api:
            await api.get_run("secret-collection-id", "r1", name="shop")
            with pytest.raises(NotFoundError):
                await api.get_job_result("secret-collection-id", "r1", "j9", name="shop")

    run(go())
    assert [(r.call, r.method, r.status) for r in records] == [
        ("get run", "GET", 503),
        ("get run", "GET", 200),
        ("get job result", "GET", 404),
    ]
    assert records[0].route == "GET /v1/async/collections/{id}/runs/{run_id}"
    assert records[2].route == "GET /v1/async/collections/{id}/runs/{run_id}/jobs/{job_id}/result"
    assert all(r.duration >= 0 and r.error is None for r in records)
    text = repr(records)
    assert "secret-collection-id" not in text and "shop" not in text and KEY not in text


def test_a_failed_exchange_is_recorded_with_its_kind_and_a_broken_observer_is_harmless() -> None:
    import httpx

    seen: list[CallRecord] = []

    def observer(record: CallRecord) -> None:
        seen.append(record)
        raise RuntimeError("the metrics code has a bug")

    script = Script([httpx.ReadTimeout("slow"), reply(200, [])])

    async def go() -> int:
        async with client(script, on_call=observer) as api:
            await api.list_collections(name="shop")
            return api._exchange.observer_failures

    assert run(go()) == 2
    assert seen[0].status is None and seen[0].error == "ReadTimeout"
    assert seen[1].status == 200 and seen[1].route == "GET /v1/async/collections"


def test_route_templates_take_every_id_out() -> None:
    assert route_template("POST", "/v1/async/collections/c1/run") == (
        "POST /v1/async/collections/{id}/run"
    )
    assert route_template("GET", "/v1/async/collections/c1/runs/r1/jobs") == (
        "GET /v1/async/collections/{id}/runs/{run_id}/jobs"
    )


def _steady(limiter: RateLimiter, clock: FakeClock, rate: float, seconds: float) -> None:
    """Successes at `rate` a second for `seconds`, each answer with no headers."""
    for _ in range(int(rate * seconds)):
        clock.now += 1.0 / rate
        limiter.on_success()


def test_a_shared_budget_running_low_cuts_the_rate_before_any_429() -> None:
    # 1,500 a minute: 25 a second stated, but other processes spend the same budget.
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(1500, 60, 0)
    _steady(limiter, clock, 10, 1.0)
    assert limiter.rate == pytest.approx(25.0)
    limiter.on_rate_headers(1500, 4, 0)  # under a fifth of a second's worth, and falling
    cut = limiter.rate
    assert cut is not None and cut < 10.0  # below what this process was seen to get
    assert limiter.paused_for == 0.0  # no pause: the budget is not gone
    # Answers within the next second carry no news about the new rate: no second cut.
    clock.now += 0.5
    limiter.on_rate_headers(1500, 2, 0)
    assert limiter.rate == cut


def test_a_low_budget_that_refills_does_not_cut_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(1500, 3, 0)
    _steady(limiter, clock, 10, 1.0)
    before = limiter.rate
    for remaining in (3, 4, 4):  # low, but the shared rate is already below the limit
        clock.now += 2.0
        limiter.on_rate_headers(1500, remaining, 0)
    assert limiter.rate == before


def test_a_full_budget_lets_a_slowed_process_take_up_the_room_in_seconds() -> None:
    # The other processes sharing the budget have finished: this one was cut to 4 a second.
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.on_rate_headers(1500, 25, 0)
    _steady(limiter, clock, 10, 1.0)
    limiter.on_rate_limited(0.0)
    assert limiter.rate == pytest.approx(8.5)
    seconds = 0.0
    while (limiter.rate or 0.0) < 20.0 and seconds < 60.0:
        rate = limiter.rate or 1.0
        clock.now += 1.0 / rate
        seconds += 1.0 / rate
        limiter.on_success()
        limiter.on_rate_headers(1500, 25, 0)  # nobody else spends it
    assert seconds < 10.0  # the fixed step alone would take ~30 s
    assert limiter.rate is not None and limiter.rate <= 25.0  # never past the stated rate


def test_a_process_joining_a_busy_budget_starts_at_the_room_it_shows() -> None:
    limiter = RateLimiter(clock=FakeClock())
    limiter.on_rate_headers(1500, 5, 0)  # 25 a second stated; a fifth of a second's worth left
    assert limiter.rate == pytest.approx(5.0)
    limiter.on_rate_headers(1500, 24, 0)  # later answers do not raise it: probing does
    assert limiter.rate == pytest.approx(5.0)
