"""Rows as JSON lines: compact UTF-8, never a crash, never a whole copy of a huge body.

- `dumps(value)` is orjson when installed (about 4x cheaper than json: the difference
  between keeping up with a fast drain and not, bench_results_write.py), else json; both
  write the same text, so a file never depends on which was used.
- A lone UTF-16 surrogate (a page can hold `"\\ud800"`, which JSON decodes to a string no
  UTF-8 encoder accepts) is written as the text `\\ud800`: the same in every format
  (Parquet must hold valid UTF-8), and a reader never meets invalid Unicode.
- `encode_row(row)` yields a row's line in pieces: a string over `CHUNK_CHARS` is encoded
  piece by piece, so writing a 100 MB page holds the page once (the caller's) plus a piece,
  never the whole encoded line beside it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping
from typing import Any


def optional(module: str) -> Any:
    """orjson and ISA-L's zlib when installed (dependencies, but never required to work)."""
    try:
        return importlib.import_module(module)
    except ImportError:  # a platform without a wheel: the standard library does the work
        return None


_ORJSON = optional("orjson")
CHUNK_CHARS = 1 << 20  # strings longer than this are encoded a piece at a time


def clean(value: Any) -> Any:
    """`value` with every lone surrogate of its strings written as `\\udXXX` text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _std(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json keeps it, UTF-8 refuses it
        return _std(clean(value))


def dumps(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8; values JSON cannot hold are written as text."""
    if _ORJSON is not None:
        try:
            return bytes(_ORJSON.dumps(value, default=str))
        except TypeError:  # a surrogate, or an integer over 64 bits: the slow path
            pass
    return _std(value)


def _large(value: Any) -> bool:
    return isinstance(value, str) and len(value) > CHUNK_CHARS


def encode_row(row: Mapping[str, Any]) -> Iterator[bytes]:
    """The JSON line of `row` (newline included), in pieces."""
    if not any(_large(v) for v in row.values()):
        yield dumps(row) + b"\n"
        return
    separator = b"{"
    for key, value in row.items():
        yield separator + dumps(key) + b":"
        separator = b","
        if not _large(value):
            yield dumps(value)
            continue
        yield b'"'
        for start in range(0, len(value), CHUNK_CHARS):
            # A str slice never splits a code point; each piece is escaped on its own.
            yield dumps(value[start : start + CHUNK_CHARS])[1:-1]
        yield b'"'
    yield b"}\n"
