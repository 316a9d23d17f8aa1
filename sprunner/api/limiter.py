"""The shared, adaptive rate limiter: one instance paces every concurrent caller.

The API's limit depends on the plan (30 to 2,000 requests a minute) and is not published to
the client, so the limiter learns it, AIMD style (as TCP does with its congestion window):

- Until the first 429 it does not throttle at all (unless a fixed `max_rps` ceiling is set).
- A 429 pauses *every* caller until `Retry-After` has passed and cuts the allowed rate to a
  fraction of the rate actually observed over the last second. The answers to calls that
  were already in flight when the first 429 came back carry no new information, so only one
  cut is made per pause.
- Each success while the limiter is the bottleneck raises the rate a little (a fixed step per
  success, so about 4 % of the rate per second): slow enough that a new 429 comes rarely, fast
  enough to find a raised limit within a minute. A fixed step per second instead would probe
  a 30-a-minute plan far too fast and a 2,000-a-minute plan far too slowly.

When the API states its limit (`X-RateLimit-Limit`, per minute as the plans are sold, with
`-Remaining` and `-Reset`), the first answer that says so sets the rate: nothing is learned
from 429s that the API told us how to avoid (a process joining a budget that others already
spend starts at the room `Remaining` shows). The stated rate is a ceiling that probing never
passes; a 429 still cuts below it (another client may share the key). `Remaining: 0`
pauses everyone until `Reset`.

Several processes on one account limit (N pods, N hosts) share one budget that none of
them sees whole, and each 429 pauses its process for a whole `Retry-After`. So:
- a budget running low (`Remaining` under a fifth of a second's worth of the stated rate,
  and lower than the last answer said) means the others spend it faster than it refills:
  the rate is cut as on a 429, before the 429s come, without a pause, at most once a second;
- a budget with nearly a second's worth left means nobody drains it (a process sharing it
  has finished): probing grows by 2 % of the rate per success instead of the fixed step.

Callers are spaced evenly (a reserved time slot each) rather than released in bursts, because
a burst is what empties the server's token bucket. A slot that nobody took in time (every
call slot was busy with a slow answer, or the process was not scheduled) may still be
taken late, within `catch_up` seconds: the server's bucket kept the token meanwhile, and the
last answer's `X-RateLimit-Remaining` says how many it holds (less `IN_FLIGHT_RESERVE` for
calls already on their way). Without that word from the server, only `UNKNOWN_CATCH_UP`
slots may be taken late. So a heavy tail of answer times costs no throughput (issue #28).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

DEFAULT_PAUSE = 1.0  # when a 429 carries no Retry-After
MAX_PAUSE = 300.0  # a Retry-After beyond this is read as this (the client caps it lower)
DECREASE_FACTOR = 0.85
INCREASE_PER_SUCCESS = 0.04  # requests/s gained per success
MIN_RATE = 0.2
WINDOW = 1.0  # seconds over which the observed rate is measured...
MIN_SAMPLES = 3  # successes needed before a 429 teaches a rate
LONG_WINDOW = 10.0  # ...or this, for plans too slow to show in one second
# Below this share of the allowed rate the limiter is not the bottleneck: do not probe up,
# or an idle period would let the rate drift far above what was ever tested.
BINDING_SHARE = 0.8
RATE_LIMIT_WINDOW = 60.0  # seconds that X-RateLimit-Limit counts over (plans are per minute)
# The least share of the stated rate a process joining a busy budget starts at.
MIN_SHARE = 0.1
# Under this many seconds' worth of calls left in the stated budget (X-RateLimit-Remaining),
# others are spending it too: cut as a 429 would, without its pause.
LOW_BUDGET = 0.2
# With nearly a second's worth left (a budget that refills faster than anyone drains it),
# probing grows by a share of the rate per success instead of the fixed step.
IDLE_BUDGET = 0.9
IDLE_GROWTH = 0.02
# Late slots (see the module docstring): at most this many seconds' worth, keeping this
# many tokens of the stated budget for calls in flight; two slots when the API says nothing.
MAX_CATCH_UP = 1.0
IN_FLIGHT_RESERVE = 8
UNKNOWN_CATCH_UP = 2
# A Reset this large is a Unix time, not a number of seconds from now.
EPOCH_THRESHOLD = 1e9


class RateLimiter:
    """Paces requests for all concurrent callers of one API; safe within one event loop."""

    def __init__(
        self,
        max_rps: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if max_rps is not None and not (max_rps > 0 and math.isfinite(max_rps)):
            raise ValueError("max_rps must be a positive number")
        self.max_rps = max_rps
        self._clock = clock
        self._wall = wall  # Unix time, for a Reset given as one
        self._learned: float | None = None  # None until the first 429 or rate headers
        self._stated: float | None = None  # the rate the API's headers state
        self._paused_until = 0.0
        self._cut_blocked_until = 0.0
        self._next_slot = clock()
        self._successes: deque[float] = deque()  # over LONG_WINDOW
        self._recent: deque[float] = deque()  # over WINDOW
        self._last_remaining: float | None = None  # X-RateLimit-Remaining, last seen

    @property
    def rate(self) -> float | None:
        """The allowed requests per second now; None means unthrottled."""
        rates = [r for r in (self._learned, self._stated, self.max_rps) if r is not None]
        return min(rates) if rates else None

    @property
    def throttling(self) -> bool:
        """Whether callers are queued for the rate now (slots are reserved ahead)."""
        return self.rate is not None and self._next_slot > self._clock()

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self) -> None:
        """Wait until this caller may send one request."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            rate = self.rate
            if rate is None:
                # Unthrottled: no slot was missed, so none may be taken late once a rate is
                # known (four processes joining one budget would each burst at once).
                self._next_slot = now
                return
            slot = max(now - self._catch_up(rate), self._next_slot)
            self._next_slot = slot + 1.0 / rate
            if slot <= now:
                return
            await asyncio.sleep(slot - now)
            # A 429 may have come back while we slept: then wait out the pause and queue again.
            if self._clock() >= self._paused_until:
                return

    def _catch_up(self, rate: float) -> float:
        """How far behind now a free slot may lie and still be taken (seconds)."""
        if self._last_remaining is None or self._stated is None:
            return UNKNOWN_CATCH_UP / rate
        room = self._last_remaining - IN_FLIGHT_RESERVE
        return min(MAX_CATCH_UP, max(0.0, room / rate))

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A 429 arrived: pause everyone, and cut the rate once per pause."""
        now = self._clock()
        pause = DEFAULT_PAUSE
        if retry_after is not None and math.isfinite(retry_after):
            pause = min(max(0.0, retry_after), MAX_PAUSE)
        self._paused_until = max(self._paused_until, now + pause)
        # Slots reserved before the 429 are void: spacing restarts when the pause ends.
        self._next_slot = self._paused_until
        if now < self._cut_blocked_until:
            return
        self._cut(now)

    def _cut(self, now: float) -> None:
        """Cut the rate below what was observed; once, until the answers to calls sent
        before the cut are in (they carry no news about the new rate).

        With too few recent successes to measure and no rate known yet (a 429 after only a
        call or two, or after a quiet spell: the first poll of a long run), there is nothing
        to cut from: the pause alone answers it, and the next 429 teaches the rate."""
        observed = self._observed_rate(now)
        current = self.rate
        if len(self._successes) >= MIN_SAMPLES:
            base = observed if current is None else min(current, observed)
        elif current is not None:
            base = current
        else:
            return
        self._learned = max(MIN_RATE, DECREASE_FACTOR * base)
        # Answers to requests sent before this cut arrive during the pause (or just after).
        self._cut_blocked_until = max(now, self._paused_until) + max(0.25, 1.0 / self._learned)

    def on_success(self) -> None:
        """An answer other than 429 arrived: the rate was acceptable; probe a little higher."""
        now = self._clock()
        self._successes.append(now)
        self._recent.append(now)
        if self._learned is None:
            return
        if self._observed_rate(now) < BINDING_SHARE * (self.rate or 0.0):
            return
        step = INCREASE_PER_SUCCESS
        if self._budget_idle():
            # The stated budget is full: nobody else spends it (another process sharing it
            # has finished); grow by a share of the rate, to take up the room in seconds.
            step = max(step, IDLE_GROWTH * self._learned)
        self._learned += step
        if self._stated is not None:
            # The API said what it allows: probing past it only earns 429s.
            self._learned = min(self._learned, self._stated)
        if self.max_rps is not None:
            # Never learn far past the ceiling: it would take many 429s to come back down.
            self._learned = min(self._learned, self.max_rps * 1.5)

    def on_rate_headers(
        self,
        limit: float | None,
        remaining: float | None,
        reset: float | None,
        *,
        max_wait: float = RATE_LIMIT_WINDOW,
    ) -> None:
        """An answer carried `X-RateLimit-*`: take the stated rate, and wait out an empty budget
        (for at most `max_wait`: a Reset a century away is not waited for).

        `reset` is seconds from now, or a Unix time (told apart by size).
        """
        now = self._clock()
        if limit is not None and limit > 0:
            self._stated = max(MIN_RATE, limit / RATE_LIMIT_WINDOW)
            start = self._stated
            if self._learned is None and remaining is not None and remaining > 0:
                # Joining a budget others already spend: start at the room it shows (a
                # second's worth left is the whole rate), not at the whole stated rate.
                start *= min(1.0, max(MIN_SHARE, remaining / self._stated))
            if self._learned is None or self._learned > start:
                self._learned = max(MIN_RATE, start)
        draining = remaining is not None and (
            self._last_remaining is None or remaining < self._last_remaining
        )
        if (
            draining
            and remaining is not None
            and self._stated is not None
            and remaining < LOW_BUDGET * self._stated
            and len(self._successes) >= MIN_SAMPLES
            and now >= self._cut_blocked_until
        ):
            # Other clients share the budget and are spending it faster than it refills:
            # slow down before it is gone, rather than wait for the 429s (and their pauses).
            # Once per second at most: the budget needs that long to show the new rate.
            self._cut(now)
            self._cut_blocked_until = max(self._cut_blocked_until, now + WINDOW)
        if remaining is not None:
            self._last_remaining = remaining
        if remaining is not None and remaining <= 0 and reset is not None:
            wait = reset - self._wall() if reset > EPOCH_THRESHOLD else reset
            wait = min(max(0.0, wait), RATE_LIMIT_WINDOW, max_wait)
            if wait > 0:
                self._paused_until = max(self._paused_until, now + wait)
                self._next_slot = max(self._next_slot, self._paused_until)

    def _budget_idle(self) -> bool:
        """The last answer said nearly a second's worth of the stated rate is left."""
        return (
            self._stated is not None
            and self._last_remaining is not None
            and self._last_remaining >= IDLE_BUDGET * self._stated
        )

    def _observed_rate(self, now: float) -> float:
        """Successes per second over the last second, or the last ten on slow plans."""
        for window, stamps in ((WINDOW, self._recent), (LONG_WINDOW, self._successes)):
            while stamps and stamps[0] < now - window:
                stamps.popleft()
        return max(len(self._recent) / WINDOW, len(self._successes) / LONG_WINDOW)

    def __repr__(self) -> str:
        return f"RateLimiter(max_rps={self.max_rps!r}, rate={self.rate!r})"


def rate_headers(headers: Mapping[str, str]) -> tuple[float | None, float | None, float | None]:
    """`(limit, remaining, reset)` from `X-RateLimit-*`; a missing or garbled one is None."""

    def number(name: str) -> float | None:
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    return (
        number("X-RateLimit-Limit"),
        number("X-RateLimit-Remaining"),
        number("X-RateLimit-Reset"),
    )
