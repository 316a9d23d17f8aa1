"""Where sprunner remembers what it did: SQLite in the state directory, or PostgreSQL.

The state is a cache, not the truth: losing it costs at most one PUT per collection and
one run of each `when: changed` collection, never a duplicate. Every change is written
through before the caller relies on it, and made durable before any outside effect that
depends on it (`lifecycle.py`). Nothing from which a secret could be recovered is stored:
content is fingerprinted with a key derived from the API key (`hashing.py`).

- `model.py`      Entry, RunRecord, LockHolder and their JSON form
- `hashing.py`    Hasher: the one keyed hash of request content
- `schema.py`     the one schema (tables, SQL) both engines run, and its upgrades
- `store.py`      StateStore: entries, values, digests, batches, locks, export and import
- `sqlite.py`     State: the state directory's `state.db` and its OS lock (the default)
- `postgres.py`   PostgresState: the `--state-url` engine, advisory locks per collection
- `migrate.py`    the directory format before the store, read once and set aside
- `lifecycle.py`  a collection's life: every transition, and the SPEC §10 promise it keeps
- `export.py`     the JSON document of `sprunner state export` / `import`
"""

from __future__ import annotations

from sprunner.state.hashing import Hasher
from sprunner.state.model import Entry, LockHolder, RunRecord
from sprunner.state.open import opened
from sprunner.state.sqlite import State, locked
from sprunner.state.store import StateConnectionLost, StateStore

__all__ = [
    "Entry",
    "Hasher",
    "LockHolder",
    "RunRecord",
    "State",
    "StateConnectionLost",
    "StateStore",
    "locked",
    "opened",
]
