"""Reading a report back (`sprunner retry REPORT`): input like any other, never trusted.

A report is a file a user names, so it is read the way job files are (`jobfile.files`):
- a regular file only: a FIFO, a device (`/dev/zero`), a directory or a socket is refused
  without being opened for reading, so nothing blocks or grows without bound;
- at most `MAX_REPORT_BYTES`, read up to the cap plus one byte;
- UTF-8 JSON nested at most `MAX_DEPTH` levels (a report has 7), parsed by a parser with a
  depth limit of its own (orjson), so a 100,000-deep document is an error, not a crash;
- valid against `schemas/report.schema.json`, the schema the reports are written to.

A report's `file` names the job file that declares a collection, and `retry` loads those
files. The rule: a `file` must name a job file the way `apply` wrote it, one file and not
a folder: a regular file whose name ends in `.yaml` or `.yml`. A directory is refused
(never walked), and so are FIFOs, devices and other names. Relative names are relative to
the current directory, as `apply` wrote them.

Every refusal is a `UsageError` (exit 2) naming the report and what is wrong.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sprunner.errors import UsageError
from sprunner.jobfile.files import Refused, read_regular

MAX_REPORT_BYTES = 128 * 1024 * 1024
MAX_DEPTH = 32
JOB_FILE_SUFFIXES = (".yaml", ".yml")
_MAX_MESSAGE = 200  # characters of a schema message: it may quote a huge value


def read_report(path: Path) -> Mapping[str, Any]:
    """The report at `path`, checked: a regular file, capped, not too deep, schema-valid."""
    try:
        data = read_regular(path, MAX_REPORT_BYTES)
    except Refused as e:
        raise UsageError(f"cannot read the report {path}: {e.reason}") from None
    document = _parsed(data, path)
    if _depth(document) > MAX_DEPTH:
        raise UsageError(f"{path}: not a sprunner report: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(document, dict):
        raise UsageError(f"{path}: not a sprunner report (not a JSON object)")
    error = _schema_error(document)
    if error is not None:
        raise UsageError(f"{path}: not a sprunner report this version can read: {error}")
    return document


def _parsed(data: bytes, path: Path) -> Any:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; json stays correct
        return _parsed_by_json(data, path)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise UsageError(f"{path}: not a JSON report: {e}") from None


def _parsed_by_json(data: bytes, path: Path) -> Any:  # pragma: no cover - see `_parsed`
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a JSON report: {e}") from None
    except RecursionError:
        raise UsageError(f"{path}: not a JSON report: nested too deep") from None


def _depth(document: Any) -> int:
    """How deeply `document` nests, found without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


@functools.cache
def _validator() -> Any:
    import jsonschema

    from sprunner.util.schemafiles import schema_text

    return jsonschema.Draft7Validator(json.loads(schema_text("report")))


def _schema_error(document: Mapping[str, Any]) -> str | None:
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is None:
        return None
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return f"{where.lstrip('.') or 'the document'}: {message}"


def job_files(document: Mapping[str, Any], path: Path) -> tuple[Path, ...]:
    """The job files the report's collections name, each checked by the rule above."""
    names = sorted({c["file"] for c in document["collections"] if isinstance(c.get("file"), str)})
    if not names:
        raise UsageError(f"{path}: the report names no job file: nothing to retry")
    problems = [f"{name}: {why}" for name in names if (why := _not_a_job_file(name))]
    missing = [name for name in names if not os.path.lexists(name)]
    if missing:
        raise UsageError(f"{path}: the job files it names are gone: {', '.join(missing)}")
    if problems:
        raise UsageError(f"{path}: names what is not a job file: " + "; ".join(problems))
    return tuple(Path(name) for name in names)


def _not_a_job_file(name: str) -> str | None:
    """Why `name` is not a job file as `apply` names one; None when it is."""
    if "\0" in name or not name.strip():
        return "not a file name"
    if not name.endswith(JOB_FILE_SUFFIXES):
        return f"a job file's name ends in {' or '.join(JOB_FILE_SUFFIXES)}"
    try:
        mode = os.stat(name).st_mode
    except OSError as e:
        return None if not os.path.lexists(name) else str(e.strerror or e)
    if stat.S_ISDIR(mode):
        return "a directory (a report names files, never folders to search)"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None
