"""Timestamps of the results stage: the API's ISO-8601 text, read and written in UTC.

A leaf module: the drain's high-water mark (`checkpoint.py`) and the row schema
(`rowschema.py`) both read the API's times, in any spelling it uses (any fraction length,
`Z` or an offset), and write one spelling, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which DuckDB,
pyarrow and Polars parse as a UTC timestamp.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (any fraction length, `Z` or an offset);
    ValueError (or OverflowError at the ends of the calendar) when it is not one."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fraction digits.
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    """`moment` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the year always 4 digits)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def before(text: str, margin: timedelta) -> str:
    """A `since_completed_at` a little before `text`, so jobs tied with it are read again."""
    return format_time(parse_time(text) - margin)


def utc_text(value: object) -> str | None:
    """A timestamp the API gave (ISO text, epoch seconds or a datetime) as UTC text; None
    for a value that is no time at all: a typed column holds a time or nothing."""
    try:
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        elif isinstance(value, str):
            moment = parse_time(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return None
            moment = datetime.fromtimestamp(value, timezone.utc)
        else:
            return None
        return format_time(moment)
    except (ValueError, OverflowError, OSError):
        return None
