"""How long the emulator takes to answer: fixed, heavy-tailed, or growing with load.

A benchmark with one fixed delay never shows what varying answer times do to a client
(issue #28: a window that read slower answers as congestion fell to one call in flight).
A latency mode is `kind:values`, from the command line (`--latency heavy:0.15:1.0`) or
`running_emulator(latency=...)`:

| mode                      | answer time                                                      |
| ------------------------- | ---------------------------------------------------------------- |
| `fixed:S`                 | S seconds, every call                                            |
| `heavy:MEDIAN[:P99]`      | log-normal: half the calls under MEDIAN, 1 % over P99 (default   |
|                           | P99 = MEDIAN x 6.67, so `heavy:0.15` has a p99 of about 1 s)      |
| `busy:IDLE:BUSY[:N]`      | IDLE with one call in flight, rising linearly to BUSY at N calls |
|                           | in flight (default 64) and staying there: a server that is fast  |
|                           | when idle and slower as calls arrive                             |

The delay is an `asyncio.sleep` before the work, so it never blocks the emulator's loop.
Draws come from one `random.Random(seed)`: a seeded run is repeatable.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

LatencyKind = Literal["fixed", "heavy", "busy"]
Z99 = 2.3263478740408408  # the 99th percentile of the standard normal
DEFAULT_TAIL = 1.0 / 0.15  # p99 / median of `heavy` when P99 is not given
DEFAULT_BUSY_AT = 64


class LatencySpecError(ValueError):
    """A latency spec that cannot be parsed."""


@dataclass
class Latency:
    kind: LatencyKind
    values: tuple[float, ...]
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def delay(self, in_flight: int) -> float:
        """Seconds to wait before answering, with `in_flight` calls being handled (this one
        included)."""
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "heavy":
            median, p99 = self.values
            sigma = math.log(p99 / median) / Z99
            return median * math.exp(sigma * self._random.gauss(0.0, 1.0))
        idle, busy, busy_at = self.values
        share = min(1.0, max(0, in_flight - 1) / max(1.0, busy_at - 1))
        return idle + (busy - idle) * share

    def __str__(self) -> str:
        return f"{self.kind}:" + ":".join(f"{v:g}" for v in self.values)


def parse_latency(spec: str, *, seed: int = 0) -> Latency:
    """`fixed:0.15`, `heavy:0.15[:1.0]`, `busy:0.003:0.044[:64]` (see the module docstring)."""
    kind, _, rest = spec.strip().partition(":")
    try:
        values = tuple(float(v) for v in rest.split(":")) if rest else ()
    except ValueError:
        raise LatencySpecError(f"{spec!r}: the values must be numbers") from None
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise LatencySpecError(f"{spec!r}: the values must be finite and not negative")
    if kind == "fixed" and len(values) == 1:
        return Latency("fixed", values, seed)
    if kind == "heavy" and len(values) in (1, 2) and values[0] > 0:
        p99 = values[1] if len(values) == 2 else values[0] * DEFAULT_TAIL
        if p99 < values[0]:
            raise LatencySpecError(f"{spec!r}: the p99 must be at least the median")
        return Latency("heavy", (values[0], max(p99, values[0] * (1 + 1e-9))), seed)
    if kind == "busy" and len(values) in (2, 3):
        busy_at = values[2] if len(values) == 3 else DEFAULT_BUSY_AT
        if busy_at < 1:
            raise LatencySpecError(f"{spec!r}: N must be at least 1")
        return Latency("busy", (values[0], values[1], busy_at), seed)
    raise LatencySpecError(
        f"unknown latency {spec!r}; use fixed:S, heavy:MEDIAN[:P99] or busy:IDLE:BUSY[:N]"
    )
