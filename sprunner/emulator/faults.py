"""Fault injection for the emulator: the failures a real deployment shows, on request.

A fault is `kind[:value][@route]`, from the command line (`--fault error-after:0.1@create`)
or from Python while the server runs (tests flip faults on and off mid-apply):

| kind             | value                   | effect                                            |
| ---------------- | ----------------------- | ------------------------------------------------- |
| `error-before`   | probability (default 1) | 503 without doing the work                        |
| `error-after`    | probability (default 1) | do the work, then answer 500                      |
| `drop-after`     | probability (default 1) | do the work, then close the connection unanswered |
| `rate-429`       | probability (default 1) | 429 with `Retry-After`, no work done              |
| `quota`          | probability (default 1) | 429 "monthly quota exceeded", no work done        |
| `slow`           | seconds                 | wait before handling                              |
| `rate-limit`     | requests per second     | token bucket (one second of burst); 429 if empty  |
|                  |                         | and `X-RateLimit-Limit/-Remaining/-Reset` on each |
|                  |                         | answer: per minute, tokens left, s until one is   |
| `no-idempotency` | —                       | ignore `Idempotency-Key`, like an old deployment  |

`route` restricts a fault to one kind of call (see `ROUTES`). `Faults.once(kind, route=...)`
fires exactly once, e.g. "drop the next create after doing the work". Probabilistic faults
draw from one `random.Random(seed)`, so a seeded run is repeatable. The object is shared
between the server thread and the test thread, hence the lock.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

FaultKind = Literal[
    "error-before",
    "error-after",
    "drop-after",
    "rate-429",
    "quota",
    "slow",
    "rate-limit",
    "no-idempotency",
]
KINDS: tuple[str, ...] = get_args(FaultKind)
ROUTES: tuple[str, ...] = ("list", "get", "create", "update", "delete", "run", "get_run")
ROUTES += ("list_runs", "list_jobs", "get_result")
_PROBABILISTIC = ("error-before", "error-after", "drop-after", "rate-429", "quota")
# Faults that act before the work are decided first: a rejected call does no work, so it must
# not use up a one-shot fault meant for after the work.
_ORDER: tuple[str, ...] = ("slow", "no-idempotency", "quota", "rate-limit", "rate-429")
_ORDER += ("error-before",)
_ORDER += ("error-after", "drop-after")


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed."""


@dataclass
class Fault:
    kind: FaultKind
    value: float = 1.0
    route: str | None = None
    times: int | None = None  # fire at most this many more times; None: no limit
    retry_after: int = 1  # seconds, for rate-429
    fired: int = 0

    def applies_to(self, route: str) -> bool:
        return (self.route is None or self.route == route) and self.times != 0

    def __str__(self) -> str:
        text = self.kind if self.kind == "no-idempotency" else f"{self.kind}:{self.value:g}"
        return text if self.route is None else f"{text}@{self.route}"


def parse_fault(spec: str) -> Fault:
    """`kind[:value][@route]`, e.g. `error-after:0.1`, `slow:0.5@run`, `no-idempotency`."""
    text, _, route = spec.strip().partition("@")
    kind, _, value_text = text.partition(":")
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    if route and route not in ROUTES:
        raise FaultSpecError(f"unknown route {route!r} in {spec!r}; known: {', '.join(ROUTES)}")
    if kind in ("slow", "rate-limit") and not value_text:
        raise FaultSpecError(f"{kind} needs a value, e.g. {kind}:{'0.5' if kind == 'slow' else 25}")
    try:
        value = float(value_text) if value_text else 1.0
    except ValueError:
        raise FaultSpecError(f"{spec!r}: {value_text!r} is not a number") from None
    if kind in _PROBABILISTIC and not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{spec!r}: a probability must be between 0 and 1")
    if value < 0 or (kind == "rate-limit" and value == 0):
        raise FaultSpecError(f"{spec!r}: the value must be positive")
    return Fault(cast(FaultKind, kind), value, route or None)


@dataclass
class Decision:
    """What the faults say about one incoming call, decided when it arrives."""

    delay: float = 0.0
    reject: Literal["error", "429", "quota"] | None = None
    retry_after: int = 1
    after: Literal["error", "drop"] | None = None
    idempotency: bool = True
    headers: dict[str, str] = field(default_factory=dict)  # added to the answer


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float | None:
        """Take a token; if there is none, return the seconds until there is one."""
        now = time.monotonic()
        capacity = max(1.0, self.rate)
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*` as of now: the limit per minute (as plans are sold), the whole
        tokens left, and the seconds until there is one (0 when there is)."""
        remaining = int(self.tokens)
        reset = 0.0 if remaining >= 1 else (1.0 - self.tokens) / self.rate
        return {
            "X-RateLimit-Limit": f"{self.rate * 60:g}",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{reset:.3f}",
        }


class Faults:
    """The active faults of one emulator; safe to change from any thread at any time."""

    def __init__(self, specs: Iterable[str | Fault] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._buckets: dict[int, _Bucket] = {}
        for spec in specs:
            self.add(spec)

    def add(
        self,
        spec: str | Fault | FaultKind,
        value: float | None = None,
        *,
        route: str | None = None,
        times: int | None = None,
    ) -> Fault:
        if isinstance(spec, Fault):
            fault = spec
        else:
            text, at, spec_route = spec.partition("@")
            if value is not None and ":" not in text:
                # `add("slow", 0.5)`: the value given apart, checked like one in the spec.
                spec = f"{text}:{value}{at}{spec_route}"
            fault = parse_fault(spec)
        if value is not None:
            fault.value = value
        if route is not None:
            if route not in ROUTES:
                raise FaultSpecError(f"unknown route {route!r}; known: {', '.join(ROUTES)}")
            fault.route = route
        if times is not None:
            fault.times = times
        with self._lock:
            self._faults.append(fault)
        return fault

    def once(self, kind: FaultKind, *, route: str | None = None, value: float = 1.0) -> Fault:
        """A fault that fires on the next matching call only (with probability `value`)."""
        return self.add(kind, value, route=route, times=1)

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
            self._buckets.pop(id(fault), None)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._buckets.clear()

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.times != 0]

    def decide(self, route: str) -> Decision:
        decision = Decision()
        with self._lock:
            ordered = sorted(self._faults, key=lambda f: _ORDER.index(f.kind))
            for fault in ordered:
                if fault.applies_to(route) and self._fires(fault, decision):
                    fault.fired += 1
                    if fault.times is not None:
                        fault.times -= 1
        return decision

    def _fires(self, fault: Fault, decision: Decision) -> bool:
        kind = fault.kind
        if kind == "slow":
            decision.delay += fault.value
            return True
        if kind == "no-idempotency":
            decision.idempotency = False
            return True
        if kind == "rate-limit":
            if decision.reject is not None:
                return False
            bucket = self._buckets.setdefault(id(fault), _Bucket(fault.value, fault.value))
            wait = bucket.take()
            decision.headers.update(bucket.headers())
            if wait is None:
                return False
            decision.reject, decision.retry_after = "429", max(1, math.ceil(wait))
            return True
        # Probabilistic: one rejection or one after-effect per call at most.
        if decision.reject is not None or decision.after is not None:
            return False
        if self._random.random() >= fault.value:
            return False
        if kind == "error-before":
            decision.reject = "error"
        elif kind == "rate-429":
            decision.reject, decision.retry_after = "429", fault.retry_after
        elif kind == "quota":
            decision.reject = "quota"
        else:
            decision.after = "error" if kind == "error-after" else "drop"
        return True
