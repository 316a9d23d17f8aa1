"""The state directory's format before the SQLite store, read once to migrate it.

That format (sprunner up to the store of issue #22): `state.json`, a snapshot (`version`
1 or 2, `apis` {api_url: {name: entry}}, `blobs` {api_url: {name: {kind: value}}});
`journal.jsonl`, one JSON change a line since the snapshot (a torn last line is skipped);
and `applied/`, request digests in 256 bucket files (`<bb>.txt`: `@<key> #<key id>` then a
digest a line) or, earlier, one file a collection (`<key>.txt`: `#<key id>` then digests),
where `key` is a hash of the API URL and the name. Version 1 fingerprints and digests are
unkeyed: the store reads such fingerprints as unknown, and the digests are dropped.

`read` gives the export document's `apis` value (export.py), which the store restores in
the transaction that creates its schema; `set_aside` then moves the old files into
`backup-<time>/` beside the database (fsyncing both folders), once the database holds them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from sprunner.errors import StateError
from sprunner.util.atomic import fsync_directory

SNAPSHOT, JOURNAL, APPLIED = "state.json", "journal.jsonl", "applied"
RECORD_START = '{"api"'
KEY_LENGTH = 24


def legacy_files(directory: Path) -> list[Path]:
    """The files of the older format in `directory` (none: nothing to migrate)."""
    return [p for p in (directory / n for n in (SNAPSHOT, JOURNAL, APPLIED)) if p.exists()]


def read(directory: Path) -> dict[str, Any]:
    """Everything the older files hold, as the `apis` of an export document."""
    try:
        entries, blobs = _snapshot(directory / SNAPSHOT)
        if (directory / JOURNAL).exists():
            for record in _journal(directory / JOURNAL):
                _replay(record, entries, blobs)
        digests = _digests(directory / APPLIED)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise StateError(f"cannot read the state in {directory}: {e}") from e
    apis: dict[str, Any] = {}
    for api_url in sorted(set(entries) | set(blobs)):
        names = entries.get(api_url, {})
        keys = {_key(api_url, name): name for name in names}
        applied = {keys[k]: found for k, found in digests.items() if k in keys}
        apis[api_url] = {"entries": names, "applied": applied, "blobs": blobs.get(api_url, {})}
    return apis


def set_aside(directory: Path, files: list[Path]) -> None:
    """Move the older files into `backup-<UTC time>/`, durably (the folders fsynced)."""
    backup = directory / time.strftime("backup-%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        backup.mkdir(exist_ok=True)
        for path in files:
            os.replace(path, backup / path.name)
        fsync_directory(backup)
        fsync_directory(directory)
    except OSError as e:
        raise StateError(f"cannot move the older state files of {directory} aside: {e}") from e


def _snapshot(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not path.exists():
        return {}, {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") not in (1, 2):
        raise StateError(
            f"{path}: state version {data.get('version')!r} is not 1 or 2; "
            "move the directory aside to start afresh"
        )
    return dict(data.get("apis", {})), dict(data.get("blobs", {}))


def _journal(path: Path) -> list[dict[str, Any]]:
    """Every complete record; a torn line is skipped, and a record an older version wrote
    right after a torn fragment, on the same line, is recovered from its start."""
    records = []
    for raw in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        for text in (line, line[max(line.rfind(RECORD_START), 0) :]):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                records.append(value)
            break
    return records


def _replay(record: dict[str, Any], entries: dict[str, Any], blobs: dict[str, Any]) -> None:
    api, name = record["api"], record["name"]
    if "blob" in record:
        kinds = blobs.setdefault(api, {}).setdefault(name, {})
        kinds.pop(record["blob"], None)
        if record.get("value") is not None:
            kinds[record["blob"]] = record["value"]
    elif record["entry"] is None:
        entries.setdefault(api, {}).pop(name, None)
    else:
        entries.setdefault(api, {})[name] = record["entry"]


def _key(api_url: str, name: str) -> str:
    return hashlib.sha256(f"{api_url}\n{name}".encode()).hexdigest()[:KEY_LENGTH]


def _digests(folder: Path) -> dict[str, dict[str, Any]]:
    """key -> {key_id, digests}: one file a collection first, buckets (newer) over them."""
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    paths = sorted(folder.glob("*.txt"), key=lambda p: len(p.stem) != KEY_LENGTH)
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(path.stem) == KEY_LENGTH:
            lines = text.split()
            if lines and lines[0].startswith("#"):  # without: unkeyed (version 1), dropped
                found[path.stem] = {"key_id": lines[0][1:], "digests": lines[1:]}
            continue
        for block in text.split("@")[1:]:
            lines = block.split()
            if len(lines) >= 2 and len(lines[0]) == KEY_LENGTH and lines[1].startswith("#"):
                found[lines[0]] = {"key_id": lines[1][1:], "digests": lines[2:]}
    return found
