"""Waiting before a repeat: one frozen `Backoff` value, injected wherever calls are retried,
and the one "send, then look, then back off" loop of the non-idempotent POSTs.

- `API_BACKOFF`: the client's retries of one HTTP call (`sprunner.api.client`).
- `WRITE_BACKOFF`: the repeats of a create or a run start whose POST failed ambiguously and
  left nothing to adopt (`reconcile/execute.py`, `runs/starter.py`).
`Retries` bundles the two so the CLI carries them as one setting; tests inject a faster one
instead of patching constants.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sprunner.api.errors import AmbiguousApiError

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


API_BACKOFF = Backoff(base=0.5, cap=30.0, attempts=6)
WRITE_BACKOFF = Backoff(base=1.0, cap=8.0, attempts=4)


@dataclass(frozen=True)
class Retries:
    """Every backoff of one command."""

    api: Backoff = field(default=API_BACKOFF)
    write: Backoff = field(default=WRITE_BACKOFF)


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
