"""Waiting before a repeat: one frozen `Backoff` value, injected wherever calls are retried,
and the one retry helper (`retry_call`, on tenacity) that every repeat goes through.

- `API_BACKOFF`: the client's retries of one HTTP call (`sprunner.api.client`).
- `WRITE_BACKOFF`: the repeats of a create or a run start whose POST failed ambiguously and
  left nothing to adopt (`reconcile/execute.py`, `runs/start.py`).
`Retries` bundles the two so the CLI carries them as one setting; tests inject a faster one
instead of patching constants.

`retry_call(send, backoff=..., retry_on=...)` serves every caller that repeats a call: the
API client, and (later) pings and uploads. A failure may carry the server's own word on
when to come back (`wait_hint`, e.g. a 429's `Retry-After`): that is honoured, capped,
with a little jitter so that callers paused together do not return together.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sprunner.api.errors import AmbiguousApiError

if TYPE_CHECKING:  # tenacity is imported when a call first needs a repeat: start-up stays light
    from tenacity import RetryCallState

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: the n-th wait is `min(cap, base * 2**(n-1))`, jittered down by up
    to `jitter` of itself (0.5: between half and all of it); at most `attempts` tries."""

    base: float
    cap: float
    attempts: int
    jitter: float = 0.5

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first repeat)."""
        ceiling = min(self.cap, self.base * 2 ** (retry - 1))
        jittered: float = ceiling * random.uniform(1.0 - self.jitter, 1.0)
        return jittered

    def after(self, retry: int, hint: float | None) -> float:
        """The wait before retry number `retry`: the server's `hint` (seconds) when it gave
        one, capped and jittered up a little; else the exponential backoff."""
        if hint is None:
            return self.delay(retry)
        wait = min(max(0.0, hint), self.cap)
        return wait + random.uniform(0.0, max(0.0, min(0.1 * wait + 0.05, self.cap - wait)))


API_BACKOFF = Backoff(base=0.5, cap=30.0, attempts=6)
WRITE_BACKOFF = Backoff(base=1.0, cap=8.0, attempts=4)


@dataclass(frozen=True)
class Retries:
    """Every backoff of one command."""

    api: Backoff = field(default=API_BACKOFF)
    write: Backoff = field(default=WRITE_BACKOFF)


def _no_hint(_: BaseException) -> float | None:
    return None


def _wait(
    backoff: Backoff, hint: Callable[[BaseException], float | None]
) -> Callable[[RetryCallState], float]:
    """tenacity's wait, from a `Backoff` and the failure's own hint. Tenacity counts from
    the second try (the first went before it, in `retry_call`)."""

    def wait(retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return backoff.after(retry_state.attempt_number + 1, None if error is None else hint(error))

    return wait


async def retry_call(
    send: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    retry_on: Callable[[BaseException], bool],
    wait_hint: Callable[[BaseException], float | None] = _no_hint,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`await send()`, repeated after each failure that `retry_on` accepts, at most
    `backoff.attempts` tries in all; the last failure is raised as it is.

    The first try goes without tenacity: it nearly always succeeds, and a retry loop set up
    for every call cost a thirtieth of sprunner's CPU at scale. The repeats go through it.
    """
    try:
        return await send()
    except Exception as error:
        if backoff.attempts <= 1 or not retry_on(error):
            raise
        await sleep(backoff.after(1, wait_hint(error)))
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    retrying = AsyncRetrying(
        stop=stop_after_attempt(backoff.attempts - 1),
        wait=_wait(backoff, wait_hint),
        retry=retry_if_exception(retry_on),
        sleep=sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await send()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


async def send_then_look(
    send: Callable[[], Awaitable[T]],
    look: Callable[[], Awaitable[T | None]],
    backoff: Backoff,
) -> tuple[T, bool]:
    """Send a non-idempotent POST; after an ambiguous failure, look before sending again.

    Returns (the answer, adopted): adopted is True when `look` found that a failed attempt
    took effect after all. After `backoff.attempts` ambiguous failures with nothing found,
    the last failure is raised.
    """
    for attempt in range(1, backoff.attempts + 1):
        try:
            return await send(), False
        except AmbiguousApiError:
            found = await look()
            if found is not None:
                return found, True
            if attempt == backoff.attempts:
                raise
            await asyncio.sleep(backoff.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover
