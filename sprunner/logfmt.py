"""How one log line looks: plain text with a UTC timestamp, or one JSON object (SPEC §9).

Pure functions of their arguments (the time is passed in), so every format is a unit test.
The output object (`sprunner.ui`) decides when a line is written and redacts it first.

JSON lines carry `ts, level, event, collection, run_id, message` and any extra fields. The
runner's messages are sentences that start with the collection's name (`NAME: run ID
started`); `structure` reads `collection`, `run_id` and `event` back from them, so a log
shipper can filter by collection without the runner knowing about log formats. A message
that names no known collection has `collection: null`; one whose kind is not recognised has
`event: "log"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# The run ids the API and the emulator hand out: hex or uuid-like tokens.
_RUN_ID = re.compile(r"\brun ([0-9A-Za-z][0-9A-Za-z_-]{5,})\b")

# (words in the message after "NAME: ", event name), first match wins.
_EVENTS: tuple[tuple[str, str], ...] = (
    ("adopted run", "run_adopted"),
    ("started", "run_started"),
    ("completed", "run_completed"),
    ("still in progress after", "run_timed_out"),
    ("run skipped", "run_skipped"),
    ("run refused", "run_refused"),
    ("gone remotely", "recreated"),
    ("created", "created"),
    ("updated", "updated"),
    ("deleted", "deleted"),
)


def timestamp(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z: `2026-11-28T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def structure(text: str, collections: Collection[str]) -> dict[str, Any]:
    """`collection`, `run_id` and `event` read from a runner message."""
    name, sep, rest = text.partition(": ")
    collection = name if sep and name in collections else None
    body = rest if collection is not None else text
    found = _RUN_ID.search(body)
    event = "log"
    if collection is not None:
        event = next((e for words, e in _EVENTS if words in body), "log")
    return {"collection": collection, "run_id": found.group(1) if found else None, "event": event}


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
