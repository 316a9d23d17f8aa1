"""Run policies: from the `run:` mapping of a collection to a frozen `RunPolicy`.

The schema has already checked types and shapes; what is left are the checks a pattern
cannot express (a cron expression croniter accepts, a percentage of at most 100%, a
duration above zero) and the conversion of durations to seconds.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Any

from sprunner.errors import Problem
from sprunner.jobfile.model import (
    DEFAULT_RESULT_FIELDS,
    MaxFailed,
    ResultsSpec,
    RetryPolicy,
    RunPolicy,
)

_DURATION = re.compile(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?\Z")

# (path below `run`, message) -> Problem, located by the caller.
LocateKey = Callable[[str, str], Problem]


def parse_duration(value: Any) -> float | None:
    """Seconds in `90s`, `30m`, `2h`, `1h30m`, or a plain number; None when invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600.0 + int(minutes or 0) * 60.0 + float(seconds or 0)


def parse_max_failed(value: Any) -> MaxFailed | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return MaxFailed(count=value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            return None
        if 0 <= percent <= 100:
            return MaxFailed(count=None, percent=percent)
    return None


# A leap day fires every 4 years, but 2100 is not a leap year: 2096 to 2104 is 8.
_NEVER_YEARS = 10


def schedule_problem(schedule: Any) -> str | None:
    """Why `schedule` is not a 5-field cron expression that fires; None when it is.

    croniter accepts 6 and 7 fields (seconds, years) and `@daily`, and accepts `0 0 31 2 *`
    only to raise CroniterBadDateError later, when the next fire time is computed during an
    apply: the next fire time is computed here instead, so that apply never meets it.
    """
    # croniter costs an import; only files with a schedule pay for it.
    import datetime as dt

    from croniter import CroniterError, croniter

    text = str(schedule)
    if len(text.split()) != 5:
        return (
            f"expected a cron expression of 5 fields (minute hour day month weekday), got {text!r}"
        )
    if not croniter.is_valid(text):
        return f"not a valid cron expression: {text!r}"
    start = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    try:
        croniter(text, start, max_years_between_matches=_NEVER_YEARS).get_next(dt.datetime)
    except (CroniterError, ValueError, OverflowError):
        return f"the cron expression {text!r} never fires (no such date)"
    return None


def parse_policy(run: dict[str, Any] | None, report: LocateKey) -> tuple[RunPolicy, list[Problem]]:
    """The policy, and a problem for each value the schema could not rule out."""
    if not run:
        return RunPolicy(), []
    if any(isinstance(value, (dict, list)) for value in run.values()):
        policy, found = _policy(run)
    else:  # thousands of collections share a few `run:` blocks: each is parsed once
        policy, found = _cached_policy(tuple((k, type(v), v) for k, v in run.items()))
    return policy, [report(key, message) for key, message in found]


@functools.lru_cache(maxsize=256)
def _cached_policy(
    items: tuple[tuple[str, type, Any], ...],
) -> tuple[RunPolicy, tuple[tuple[str, str], ...]]:
    return _policy({key: value for key, _, value in items})


def _policy(run: dict[str, Any]) -> tuple[RunPolicy, tuple[tuple[str, str], ...]]:
    """The policy, and (key below `run`, message) for each value that is wrong."""
    found: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key in ("timeout", "poll_interval", "max_age"):
        if key in run:
            seconds = parse_duration(run[key])
            if seconds is None or seconds <= 0:
                found.append((key, "expected a duration above zero such as 90s or 1h30m"))
            else:
                values[key] = seconds
    if "max_failed" in run:
        max_failed = parse_max_failed(run["max_failed"])
        if max_failed is None:
            found.append(("max_failed", "expected a count or a percentage up to 100%"))
        else:
            values["max_failed"] = max_failed
    schedule = run.get("schedule")
    if schedule is not None:
        problem = schedule_problem(schedule)
        if problem:
            found.append(("schedule", problem))
        values["schedule"] = schedule
    for key in ("when", "overlap"):
        if key in run:
            values[key] = run[key]
    if "retry" in run:
        retry, retry_problem = parse_retry(run["retry"])
        values["retry"] = retry
        if retry_problem:
            found.append(retry_problem)
    return RunPolicy(**values), tuple(found)


def parse_retry(retry: dict[str, Any]) -> tuple[RetryPolicy, tuple[str, str] | None]:
    """`run.retry`; the schema has checked attempts (0..10), `on` and the delay's shape."""
    values: dict[str, Any] = {}
    if "attempts" in retry:
        values["attempts"] = int(retry["attempts"])
    if "on" in retry:
        values["on"] = frozenset(retry["on"])
    if "delay" in retry:
        seconds = parse_duration(retry["delay"])
        if seconds is None or seconds < 0:
            message = "expected a duration such as 30s or 1m, or 0"
            return RetryPolicy(**values), ("retry.delay", message)
        values["delay"] = seconds
    return RetryPolicy(**values), None


def parse_results(results: dict[str, Any] | None, folder: str) -> ResultsSpec | None:
    """The `results:` block, with a local `to` made absolute against `folder`.

    `folder` is the folder of the job file as the user named it (not resolved through
    symlinks), so `to: results/` lands beside the job file whatever the current directory.
    An fsspec URL (anything with `://`) is kept as written.
    """
    if results is None:
        return None
    to = str(results["to"])
    if "://" not in to:
        to = os.path.abspath(os.path.join(folder, os.path.expanduser(to)))
    fields = tuple(results.get("fields") or DEFAULT_RESULT_FIELDS)
    return ResultsSpec(to=to, format=results.get("format", "jsonl.gz"), fields=fields)
