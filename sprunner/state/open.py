"""Opening the state a command asked for: `--state-dir` (default) or `--state-url`.

`opened()` is the one entry point for commands: it takes the directory's OS lock (unless
told not to) and opens its SQLite database, or connects to PostgreSQL, and on the way out
closes the store, releasing every lock, even when the command failed.

With a database and `lock=True`, one advisory lock covers the whole state of the API URL,
as the directory's OS lock does: applies on many hosts then take turns. An apply whose
runner takes a lock per collection (`StateStore.try_lock`) opens with `lock=False`
instead, so that many hosts share the work.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sprunner.errors import LockHeldError, UsageError
from sprunner.state.store import StateStore

URL_SCHEMES = ("postgresql://", "postgres://")
WHOLE_STATE = ""  # the lock name that stands for every collection (a name is never empty)


def check_state_url(url: str) -> None:
    if not url.startswith(URL_SCHEMES):
        raise UsageError(
            f"--state-url must start with {' or '.join(URL_SCHEMES)}; "
            "for a directory use --state-dir"
        )


@contextlib.contextmanager
def opened(
    *,
    state_dir: Path,
    state_url: str | None,
    api_url: str,
    key: str | None,
    lock: bool = True,
    persist: bool = True,
    apply_id: str | None = None,
) -> Iterator[StateStore]:
    """The state of `api_url`, from the database when `state_url` is set, else the
    directory; under a lock on the whole state when `lock` (LockHeldError if another
    apply holds it). Closed on the way out. `persist=False`: read only (plan, status)."""
    if state_url is not None:
        check_state_url(state_url)
        from sprunner.state.postgres import PostgresState

        store: StateStore = PostgresState.connect(state_url, api_url, key=key)
        try:
            if lock:
                _lock_whole(store, state_url, apply_id or uuid.uuid4().hex)
            yield store
        finally:
            store.close()
        return
    from sprunner.state.sqlite import State, locked

    with locked(state_dir) if lock else contextlib.nullcontext():
        store = State(state_dir, api_url, key=key, persist=persist)
        try:
            yield store
        finally:
            store.close()


def _lock_whole(store: StateStore, state_url: str, apply_id: str) -> None:
    if store.try_lock(WHOLE_STATE, apply_id=apply_id):
        return
    from sprunner.state.postgres import redacted

    holder = store.holder(WHOLE_STATE)
    by = f" ({holder})" if holder is not None else ""
    raise LockHeldError(
        f"another sprunner apply{by} holds the lock on the state database "
        f"{redacted(state_url)}; it is released when that process ends"
    )
