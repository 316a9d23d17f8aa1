"""The window of API calls in flight: at most `cap` (`--parallel`), fewer after congestion.

The window starts at `START_SIZE` (8, the old fixed bound) and moves between 1 and `cap`:

- Growth: +1 per answer while callers wait for a slot (slow start) until the first cut,
  then +1/window per answer (about +1 per round trip). It grows only while callers
  actually wait: an idle window would otherwise drift far above what was ever tested.
- Cut: x0.5 on the server's own signals of overload only, a 429, a 5xx or a transport
  failure. Only answers to calls sent *after* the last cut may cut again: the answers to
  calls already in flight then reflect the old window and carry no new information.

Answer times are never read as congestion (issue #28): a server that answers in 3 ms when
idle and 44 ms when busy is not overloaded, and an earlier window that cut itself on rising
latency fell to one call in flight against it. How fast calls may go is the rate limiter's
job (`limiter.py`), on the API's own word (429, `Retry-After`, `X-RateLimit-*`).
Time comes from an injected clock, so the behaviour is tested without sleeping.

Waiting callers are served by priority, then in arrival order: a poll that is due (`POLL`)
goes before a run start (`START`), which goes before everything else (`WRITE`: creates,
PUTs, listings). A run already going is polled on time while thousands of creates queue,
and a collection created is started before the next one is created, so runs begin early.
Lower classes are not starved for long: polls and starts are bounded by the runs begun.
While a rate limit binds, polls go last instead (`priority_of`: `LATE_POLL`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Literal

START_SIZE = 8
CONGESTION_CUT = 0.5

Signal = Literal["ok", "congestion", "neutral"]

# Priorities of a waiting call, lowest served first.
POLL = 0
START = 1
WRITE = 2
# A poll while a rate limit binds (`priority_of`): served after the starts and creates.
LATE_POLL = 3
# A create's check that it was not a replay ("get collection") goes with the starts: the
# collection's start waits for it, as a start waits for nothing else.
_PRIORITY_OF_CALL = {"get run": POLL, "start run": START, "get collection": START}


def priority_of(call: str, *, rate_bound: bool = False) -> int:
    """The priority of a client call, by its name (`"get run"`, `"start run"`, ...).

    `rate_bound`: a rate limit binds now, so every call waits for its turn anyway. Then a
    poll goes last: a run started sooner ends sooner, and a poll served later still finds
    its run done (one poll either way), while polls first left the last run to start late
    and end in an idle tail (1.15 x calls / rate against 1.06 x, bench/README figure 2).
    """
    priority = _PRIORITY_OF_CALL.get(call, WRITE)
    return LATE_POLL if rate_bound and priority == POLL else priority


class CallWindow:
    """How many calls may be in flight now; shared by every caller of one client."""

    def __init__(
        self, cap: int, *, start: int = START_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if cap < 1:
            raise ValueError("the window's cap must be at least 1")
        self.cap = cap
        self._size = float(min(start, cap))
        self._threshold = float(cap)  # slow start until the first cut
        self._clock = clock
        self._in_flight = 0
        # (priority, arrival, future): a heap, so the most urgent waiter is served first.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._last_cut = float("-inf")
        self._last_full = float("-inf")  # when callers last had to wait for a slot

    @property
    def size(self) -> int:
        return max(1, int(self._size + 1e-9))  # 7 sevenths of a slot make one slot

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def now(self) -> float:
        """The window's clock: a call's start, when it starts later than its slot was given."""
        return self._clock()

    async def acquire(self, priority: int = WRITE) -> float:
        """Wait for a slot; returns the time the call starts, to hand back to `release`.
        Waiters are served by `priority` (POLL, START, WRITE), then first come first served."""
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)  # a cancelled waiter left at the top
        if self._in_flight < self.size and not self._waiters:
            self._in_flight += 1
            if self._in_flight >= self.size:
                self._last_full = self._clock()
            return self._clock()
        self._last_full = self._clock()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._in_flight -= 1  # the slot was ours already: give it on
                self._wake()
            # Otherwise the future is cancelled: `_wake` drops it when it reaches it.
            raise
        return self._clock()

    def release(self, started: float, *, signal: Signal) -> None:
        """A call ended: adapt the window to what its answer says, then free its slot.
        How long the answer took plays no part (see the module docstring)."""
        # Grow only if the window was full while this call was out: it was the bottleneck.
        demand = bool(self._waiters) or self._last_full >= started
        self._in_flight -= 1
        if signal == "congestion":
            self._cut(started, CONGESTION_CUT)
        elif signal == "ok" and demand:
            self._grow()
        self._wake()

    def _grow(self) -> None:
        step = 1.0 if self._size < self._threshold else 1.0 / self.size
        self._size = min(float(self.cap), self._size + step)

    def _cut(self, started: float, factor: float) -> None:
        if started <= self._last_cut:
            return
        self._last_cut = self._clock()
        self._size = max(1.0, self._size * factor)
        self._threshold = self._size

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.size:
            _, _, future = heapq.heappop(self._waiters)
            if future.done():
                continue
            future.set_result(None)
            self._in_flight += 1

    def __repr__(self) -> str:
        return f"CallWindow(size={self.size}, cap={self.cap}, in_flight={self._in_flight})"
