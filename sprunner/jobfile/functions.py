"""The built-in functions of job-file templates: `range`, `lines`, `env`, `today`, `now`,
`date_range` (see the README's job-file reference).

`range` and `date_range` return sized lazy sequences (`LazySeq`), so `foreach` can multiply
their lengths against the request cap before a single request is built. `lines()` reads
only regular files inside the job-file tree; `env()` counts its calls so that the values a
template made with it are known to be secret-bearing, whatever filters they went through.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sprunner.jobfile.masking import SECRET_MASK
from sprunner.util.redact import MIN_SECRET_LENGTH

ITER_LIMIT = 10_000_000  # a lazy sequence longer than this is never listed
MAX_LINES_BYTES = 50 * 1024 * 1024
_MISSING: Any = object()


class FunctionError(ValueError):
    """Raised by our template functions with a message meant for the user."""


class LazySeq(Sequence[Any]):
    """A sized sequence computed on demand: `len()` is free, listing is bounded."""

    def __init__(self, length: int, item: Callable[[int], Any], label: str) -> None:
        self._length, self._item, self._label = length, item, label

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._item(index)

    def __iter__(self) -> Iterator[Any]:
        if self._length > ITER_LIMIT:
            raise FunctionError(f"{self._label} has {self._length:,} items, too many to list")
        return (self._item(i) for i in range(self._length))

    def __repr__(self) -> str:
        return self._label


def _defined(*args: Any) -> None:
    """Fail on an undefined argument with Jinja's own message ("'x' is undefined")."""
    from jinja2 import Undefined

    for arg in args:
        if isinstance(arg, Undefined):
            arg._fail_with_undefined_error()


def _range(*args: Any) -> LazySeq:
    _defined(*args)
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args):
        raise FunctionError("range() takes 1 to 3 integers")
    try:
        inner = range(*args)
    except ValueError as e:
        raise FunctionError(f"range(): {e}") from None
    return LazySeq(len(inner), inner.__getitem__, f"range({', '.join(map(str, args))})")


def _to_date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise FunctionError(f"{what}: expected a date such as 2024-01-31, got {value!r}") from None


def _today(fmt: str = "%Y-%m-%d", days: int = 0) -> str:
    """Today (UTC) plus `days` days, formatted: `today('%Y-%m-%d', -1)` is yesterday."""
    _defined(fmt, days)
    if not isinstance(fmt, str):
        raise FunctionError(f"today(): the format must be a string such as '%Y-%m-%d', got {fmt!r}")
    if not isinstance(days, int) or isinstance(days, bool):
        raise FunctionError(
            f"today(): days must be a whole number of days such as -1 (yesterday), got {days!r}"
        )
    try:
        return (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=days)).strftime(fmt)
    except OverflowError:
        raise FunctionError(f"today(): {days} days is out of the calendar") from None


def _now(fmt: str | None = None) -> str:
    moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return moment.isoformat() if fmt is None else moment.strftime(fmt)


def _date_range(
    start: Any,
    end: Any,
    step_days: int = 1,
    fmt: str = "%Y-%m-%d",
    *,
    notes: set[str] | None = None,
) -> LazySeq:
    """Dates from `start` to `end`, both included, every `step_days` days.

    A reversed range (end before start with a positive step, or the converse) gives no date;
    it is added to `notes` so the loader can warn instead of silently dropping requests.
    """
    _defined(start, end, step_days, fmt)
    first, last = _to_date(start, "date_range start"), _to_date(end, "date_range end")
    if not isinstance(step_days, int) or isinstance(step_days, bool) or step_days == 0:
        raise FunctionError("date_range(): step_days must be a non-zero integer")
    span = (last - first).days
    if step_days > 0:
        length = span // step_days + 1 if span >= 0 else 0
    else:
        length = span // step_days + 1 if span <= 0 else 0
    if length == 0 and notes is not None:
        way = "before" if step_days > 0 else "after"
        notes.add(
            f"date_range({first}, {last}) gives no date: the end is {way} the start "
            f"(step {step_days:+d} days)"
        )
    step = dt.timedelta(days=step_days)
    return LazySeq(
        length, lambda i: (first + i * step).strftime(fmt), f"date_range({start}, {end})"
    )


class Functions:
    """The built-in functions for one job file and one collection.

    `lines()` reads beside the job file but never outside `root` (symlinks resolved).
    `env()` records every value it hands out, so the caller can redact it; with `masked`
    it returns "***" instead, for the display rendering.
    """

    def __init__(
        self,
        *,
        base_dir: Path,
        root: Path,
        masked: bool = False,
        cache: dict[Path, tuple[str, ...]] | None = None,
    ) -> None:
        self.base_dir, self.root, self.masked = base_dir, root, masked
        self.cache = {} if cache is None else cache
        self.used_env = False
        # Counts every env() call: a render during which it moved is secret-bearing
        # (expand.py tracks taint with it, whatever filters the value went through).
        self.env_calls = 0
        self.secrets: set[str] = set()
        self.notes: set[str] = set()  # warnings worth showing (a reversed date_range)
        self.short: set[str] = set()  # env() names whose value is too short to search for

    def as_dict(self) -> dict[str, Any]:
        return {
            "range": _range,
            "lines": self.lines,
            "env": self.env,
            "today": _today,
            "now": _now,
            "date_range": self.date_range,
        }

    def date_range(
        self, start: Any, end: Any, step_days: int = 1, fmt: str = "%Y-%m-%d"
    ) -> LazySeq:
        return _date_range(start, end, step_days, fmt, notes=self.notes)

    def env(self, name: str, default: Any = _MISSING) -> Any:
        self.used_env = True
        self.env_calls += 1
        _defined(name, default)
        value = os.environ.get(str(name))
        if value is None:
            if default is _MISSING:
                raise FunctionError(f"environment variable {name} is not set (and no default)")
            return SECRET_MASK if self.masked else default
        self.secrets.add(value)
        if 0 < len(value) < MIN_SECRET_LENGTH and name not in self.short:
            # Once per collection, its length only (never the value): SPEC §10 promises
            # no mask in free text below it.
            self.short.add(name)
            self.notes.add(
                f"env({str(name)!r}) is under {MIN_SECRET_LENGTH} characters: a secret that "
                "short cannot be masked reliably in free text (an API message quoting it); "
                "it is masked where sprunner shows its own requests"
            )
        return SECRET_MASK if self.masked else value

    def lines(self, name: str) -> tuple[str, ...]:
        _defined(name)
        name = str(name)
        # realpath, not Path.resolve(): it never raises, even on a symlink loop.
        target = Path(os.path.realpath(self.base_dir / name))
        if not target.is_relative_to(self.root):
            raise FunctionError(f"lines({name!r}) may not read outside the job-file tree")
        if target not in self.cache:
            self.cache[target] = _read_lines(target, name)
        return self.cache[target]


def _read_lines(target: Path, name: str) -> tuple[str, ...]:
    from sprunner.jobfile.files import Refused, read_regular

    try:
        text = read_regular(target, MAX_LINES_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise FunctionError(f"lines({name!r}): not valid UTF-8") from None
    except Refused as e:
        raise FunctionError(f"lines({name!r}): {e.reason}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())
