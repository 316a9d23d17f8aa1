"""A simulate-mode emulator's collections and runs kept in a file between processes.

`apply --local` and `plan --local` each start an emulator in-process. Kept in a file under
the state directory, its collections (and runs, and the replies it owes to idempotency
keys) outlive the command, so the tutorial's edit -> `plan` -> `apply` shows `~ update`
and then no change, as against the real API.

What is kept is what simulate mode decided when a run started (each job's outcome and
finish offset); times are stored on the API's wall clock and turned back into the
engine's monotonic clock when loaded, so a run left in progress goes on where it was.
Fetch mode (real pages) is never kept. The file is replaced atomically; an unreadable one
starts an empty emulator (it only ever holds demo data). Standard library only: the
emulator stays independent of the rest of sprunner.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprunner.emulator.model import Job, StoredCollection, StoredRun

if TYPE_CHECKING:
    from sprunner.emulator.engine import Engine

VERSION = 1
_JOB_FIELDS = tuple(
    f.name for f in fields(Job) if f.name not in ("html", "result_bytes", "fetched")
)


def dump(engine: Engine) -> dict[str, Any]:
    return {
        "version": VERSION,
        "collections": [asdict(c) for c in engine.collections.values()],
        "runs": [
            {
                "run_id": run.run_id,
                "collection_id": run.collection_id,
                "created_at": run.created_at,
                "jobs": [{name: getattr(job, name) for name in _JOB_FIELDS} for job in run.jobs],
            }
            for run in engine.runs.values()
        ],
        "idempotency": {key: list(value) for key, value in engine.idempotency.items()},
        "attempts": [[url, custom_id, n] for (url, custom_id), n in engine.attempts.items()],
    }


def load(engine: Engine, data: Any) -> None:
    """Fill an empty engine from `dump`'s document (a foreign one is ignored)."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return
    for value in data.get("collections", []):
        collection = StoredCollection(**value)
        engine.collections[collection.id] = collection
    now_wall, now = engine.now(), time.monotonic()
    for value in data.get("runs", []):
        run = StoredRun(
            value["run_id"],
            value["collection_id"],
            value["created_at"],
            now - max(0.0, now_wall - value["created_at"]),
            [Job(**job) for job in value["jobs"]],
        )
        engine.runs[run.run_id] = run
    for key, (status, answer) in data.get("idempotency", {}).items():
        engine.idempotency[key] = (status, answer)
    for url, custom_id, count in data.get("attempts", []):
        engine.attempts[(url, custom_id)] = count


def read(engine: Engine, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    try:
        load(engine, json.loads(text))
    except (ValueError, TypeError, KeyError):
        # A damaged file: start empty rather than half-loaded.
        for kept in (engine.collections, engine.runs, engine.idempotency, engine.attempts):
            kept.clear()


def write(engine: Engine, path: Path) -> None:
    """Replace `path` with the engine's content, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(dump(engine), file, separators=(",", ":"))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
