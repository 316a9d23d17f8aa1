"""`backoff.retry_call`: the one retry helper (on tenacity) every repeated call goes through."""

from __future__ import annotations

import asyncio

import pytest

from sprunner.util.backoff import Backoff, retry_call

BACKOFF = Backoff(base=1.0, cap=10.0, attempts=4)


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def _run(send: Flaky, **kw: object) -> tuple[object, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go() -> object:
        return await retry_call(send, backoff=BACKOFF, sleep=sleep, **kw)  # type: ignore[arg-type]

    return asyncio.run(go()), waits


def test_retries_what_it_may_with_growing_jittered_waits() -> None:
    send = Flaky([OSError(), OSError(), OSError()])
    result, waits = _run(send, retry_on=lambda e: isinstance(e, OSError))
    assert result == "done" and send.calls == 4
    assert [round(w) for w in waits] != [] and len(waits) == 3
    for n, wait in enumerate(waits, start=1):
        ceiling = min(BACKOFF.cap, BACKOFF.base * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_a_failure_it_may_not_retry_is_raised_at_once() -> None:
    send = Flaky([KeyError("no")])
    with pytest.raises(KeyError):
        _run(send, retry_on=lambda e: isinstance(e, OSError))
    assert send.calls == 1


def test_the_last_failure_is_raised_when_the_attempts_are_spent() -> None:
    send = Flaky([OSError(str(n)) for n in range(10)])
    with pytest.raises(OSError, match="3"):
        _run(send, retry_on=lambda e: True)
    assert send.calls == BACKOFF.attempts


def test_the_server_s_hint_is_honoured_capped_and_jittered_up_a_little() -> None:
    send = Flaky([OSError("7"), OSError("99")])
    _, waits = _run(send, retry_on=lambda e: True, wait_hint=lambda e: float(str(e)))
    assert 7.0 <= waits[0] <= 7.8
    assert waits[1] == pytest.approx(BACKOFF.cap)  # 99 s asked: the cap
