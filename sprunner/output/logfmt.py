"""How one log line looks: plain text with a UTC timestamp, or one JSON object (SPEC §9).

Pure functions of their arguments (the time is passed in), so every format is a unit test.
The output object (`sprunner.output.ui`) decides when a line is written and redacts it first.

JSON lines carry `ts, level, event, collection, run_id, apply_id, message` and the fields
the line was logged with (its counts). Events have fixed names, given by the code that
logs the line (the README's table lists them); a line logged without one has
`event: "log"`. `collection` and `run_id` are read back from the message when the line
did not give them: the runner's messages are sentences that start with the collection's
name (`NAME: run ID started`), so a log shipper can filter any line by collection.
`apply_id` is null only for lines of a command that is no apply (a usage error, say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Every event a JSON line may name, with the fields it carries beyond `ts, level, event,
# collection, run_id, apply_id, message`: the README's table, checked by a test against
# this list and against the code's `event=` arguments.
EVENTS: tuple[tuple[str, str, str], ...] = (
    ("apply_started", "command", "an apply (or `retry`) took the lock and starts"),
    (
        "apply_finished",
        "exit_code, ok, duration_s, collections, created, updated, unchanged, deleted, "
        "errors, failed, stale, runs, retries, credits, total_requests, success_requests, "
        "failed_requests, timeout_requests",
        "the last line of an apply: its exit code and its summary",
    ),
    ("collection_created", "", "created remotely (`NAME: created (ID)`)"),
    ("collection_updated", "", "its request list replaced by a PUT"),
    ("collection_deleted", "", "deleted by `--prune`"),
    ("collection_recreated", "", "gone remotely (deleted by someone), created again"),
    ("collection_skipped", "", "another apply on a shared state handles it"),
    ("collection_error", "", "an API call for it failed for good (exit code 1)"),
    (
        "collection_unhealthy",
        "stale",
        "not run now, and its last run failed or it is stale (`run.max_age`): exit code 1",
    ),
    ("run_skipped", "", "no run by its `when` or `schedule` (with `-v`)"),
    ("run_refused", "", "no run: `--max-credits` would be passed"),
    ("run_started", "total_requests, cost", "a run started (cost: at most, in credits)"),
    ("run_adopted", "", "a run in progress adopted instead of starting one"),
    (
        "run_completed",
        "total_requests, success_requests, failed_requests, timeout_requests",
        "a run completed with failed jobs that are retried next (info: the verdict follows)",
    ),
    (
        "run_finished",
        "status, ok, retries, credits, total_requests, success_requests, failed_requests, "
        "timeout_requests",
        "a run's verdict, after its retries; level error when not ok",
    ),
    ("retry_started", "attempt, total_requests, cost", "a retry run of `<name>.retry` started"),
    ("retry_adopted", "", "a retry run left by a killed apply adopted"),
    (
        "retry_finished",
        "attempt, success_requests, total_requests, credits",
        "a retry run seen to its end",
    ),
    ("retry_refused", "", "a retry refused by `--max-credits`"),
    (
        "progress",
        "collections, reconciled, runs, runs_done, requests, requests_done, failed, credits",
        "while the runs go on, every 30 s (not on a terminal; credits charged so far)",
    ),
    ("api_call", "method, route, status, duration_ms", "one API call (with `-vv`)"),
    ("usage_error", "exit_code, command", "a command line click could not parse (exit code 2)"),
    ("log", "", "any other line (warnings, notes)"),
)

# The run ids the API and the emulator hand out: hex or uuid-like tokens.
_RUN_ID = re.compile(r"\brun ([0-9A-Za-z][0-9A-Za-z_-]{5,})\b")


def timestamp(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z: `2026-11-28T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def structure(text: str, collections: Collection[str]) -> dict[str, Any]:
    """`collection` and `run_id` read from a runner message (`event` is "log")."""
    name, sep, rest = text.partition(": ")
    collection = name if sep and name in collections else None
    body = rest if collection is not None else text
    found = _RUN_ID.search(body)
    return {"event": "log", "collection": collection, "run_id": found.group(1) if found else None}


def text_line(level: str, text: str, *, now: float | None) -> str:
    """`2026-11-28T12:00:00.123Z warning: text` (no timestamp when `now` is None)."""
    prefix = "" if level in ("info", "debug") else f"{level}: "
    if now is None:
        return f"{prefix}{text}"
    # A message of several lines (all the problems of a job file) is stamped on each line:
    # a log reader that splits on newlines never sees an unstamped line.
    stamp = timestamp(now) + " "
    first, *more = text.split("\n")
    return "\n".join([f"{stamp}{prefix}{first}", *(stamp + line for line in more)])


def json_line(
    level: str,
    text: str,
    *,
    now: float,
    collections: Collection[str] = (),
    fields: Mapping[str, Any] | None = None,
) -> str:
    """One JSON object on one line; explicit `fields` win over what `structure` reads."""
    record: dict[str, Any] = {"ts": timestamp(now), "level": level}
    record.update(structure(text, collections))
    record["apply_id"] = None
    record.update(fields or {})
    record["message"] = text
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def call_text(
    method: str, route: str, status: int | None, duration: float, error: str | None
) -> str:
    """One API call for `-vv`: method, route template (ids taken out: no secret, no id),
    status (or the failure's kind) and duration."""
    answer = str(status) if status is not None else (error or "no answer")
    path = route.partition(" ")[2] or route
    return f"api: {method} {path} -> {answer} in {duration * 1000:.0f} ms"
