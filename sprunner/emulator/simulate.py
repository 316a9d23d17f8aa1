"""Simulate mode's outcomes: decided by words in the URL, so tests and demos need no network.

Rules, checked in this order (substrings of the whole URL, query included):

| URL contains      | outcome                                                                 |
| ----------------- | ----------------------------------------------------------------------- |
| `flaky` / `flakyN`| the first N attempts (default 1) fail, later attempts succeed; a failing |
|                   | attempt times out if the URL also contains `timeout`, else fails (503)  |
| `timeout`         | always times out (no status code)                                       |
| `fail`            | always fails: HTTP 500 from the target                                  |
| `blocked`         | always fails: HTTP 403, `block_reason` "captcha"                        |
| anything else     | succeeds: HTTP 200                                                      |
| `result-lost`     | (with any of the above) the result is lost: `result_lost` on fetch      |
| `size=N` (query)  | the job's result body is N bytes of JSON (see `bodies.py`)              |

An attempt is one run of a request, counted per `(url, custom_id)` across the runs of every
collection of one emulator, so a retry collection that re-runs a flaky URL succeeds.

Timing: the jobs of a run finish evenly over `run_seconds`, two at a time: both jobs of a
pair finish at the same instant (the same millisecond of `completed_at`), so a client that
pages on `completed_at` must keep ties.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sprunner.emulator.model import Job, Outcome

TIE_GROUP = 2  # jobs that finish at the same instant
_FLAKY = re.compile(r"flaky(\d*)")


@dataclass(frozen=True)
class Planned:
    outcome: Outcome
    status_code: int | None
    message: str
    block_reason: str | None = None


def plan_outcome(url: str, attempt: int) -> Planned:
    """The outcome of the `attempt`-th run (0 for the first) of a request for `url`."""
    flaky = _FLAKY.search(url)
    if flaky is not None:
        failures = int(flaky.group(1) or 1)
        if attempt >= failures:
            return Planned("completed", 200, "OK")
        if "timeout" in url:
            return Planned("timeout", None, f"Timed out (simulated flaky, attempt {attempt + 1})")
        return Planned(
            "failed", 503, f"HTTP 503 from target (simulated flaky, attempt {attempt + 1})"
        )
    if "timeout" in url:
        return Planned("timeout", None, "Timed out (simulated)")
    if "fail" in url:
        return Planned("failed", 500, "HTTP 500 from target (simulated)")
    if "blocked" in url:
        return Planned("failed", 403, "Blocked by a captcha (simulated)", "captcha")
    return Planned("completed", 200, "OK")


def schedule(jobs: list[Job], run_seconds: float, elapsed: float = 0.0) -> None:
    """Set when each job starts and finishes, pairs together, evenly over `run_seconds`.

    With `elapsed` (a run already under way, whose `run_seconds` changed): jobs finished
    by then keep their times, and the others finish no earlier than now, so that no
    `completed_at` ever moves into the past.
    """
    groups = math.ceil(len(jobs) / TIE_GROUP)
    for job in jobs:
        if elapsed and job.done_offset <= elapsed:
            continue
        group = job.index // TIE_GROUP
        if run_seconds <= 0:
            started, done = 0.0, 0.0
        else:
            started = run_seconds * group / groups
            done = run_seconds * (group + 1) / groups
        job.done_offset = max(done, elapsed)
        job.started_offset = min(started, job.done_offset)
