"""Named points where a test can kill sprunner, to prove that every step recovers.

`reached(point)` is called at each step of a publication (SPEC §10: "Data is never lost or
wrong"). It does nothing unless `SPRUNNER_KILL_AT` names that point: then the process
kills itself with SIGKILL, as a power cut or an OOM killer would, with no cleanup and no
`finally`. `SPRUNNER_KILL_AT=point:N` kills at the N-th time the point is reached.

The steps themselves are the production code: there is no other path for tests to take.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SPRUNNER_KILL_AT"
_seen: Counter[str] = Counter()


def reached(point: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _seen[point] += 1
    if _seen[point] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
