"""The journal of the state directory: one JSON record a line, appended as changes happen.

Invariants:
- every append starts on a fresh line: if the file does not end with a newline (a torn
  last line left by a power loss mid-write), a newline is written first, so the torn
  fragment is never joined with the next record;
- reading keeps every complete record: an undecodable line is a torn fragment, possibly
  followed (in journals written before the rule above) by a complete record on the same
  line, which is recovered from its start (`{"api"`, the first key of every record).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD_START = '{"api"'


def append(path: Path, record: dict[str, Any], *, durable: bool) -> None:
    """Append one record; fsync it when `durable`. Raises OSError."""
    # Opened per change: nothing is left open between changes outside an apply.
    with Appender(path) as journal:
        journal.append(record, durable=durable)


class Appender:
    """The journal held open for many appends (an apply's group commit: opening, checking
    the last line and closing per record cost three system calls a change)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a+b", buffering=0)  # each record one write(): no buffer to lose
        try:
            # Only a record torn by a power loss can leave the file without a final newline,
            # so checking once at opening is enough: every write after it is a whole line.
            self._fresh_line = self._file.seek(0, os.SEEK_END) == 0
            if not self._fresh_line:
                self._file.seek(-1, os.SEEK_END)
                self._fresh_line = self._file.read(1) == b"\n"
        except BaseException:
            self._file.close()
            raise

    def append(self, record: dict[str, Any], *, durable: bool) -> None:
        line = json.dumps(record).encode("utf-8") + b"\n"
        if not line.startswith(RECORD_START.encode()):
            raise ValueError("a journal record must start with its api key")  # pragma: no cover
        if not self._fresh_line:
            line = b"\n" + line
            self._fresh_line = True
        self._file.write(line)
        if durable:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record of the journal, in order; torn fragments are skipped."""
    with path.open("rb") as journal:
        for raw in journal:
            record = _decode(raw.decode("utf-8", errors="replace").strip())
            if record is not None:
                yield record


def _decode(line: str) -> dict[str, Any] | None:
    if not line:
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        start = line.rfind(RECORD_START)
        if start <= 0:
            return None  # a torn last line: the change it held never completed
        try:
            value = json.loads(line[start:])
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None
