"""Where sprunner remembers what it did: a state directory, or a PostgreSQL database.

The state is a cache, not the truth: losing it costs at most one PUT per collection and
one run of each `when: changed` collection, never a duplicate. Every change is persisted
before the caller relies on it. Nothing from which a secret could be recovered is stored:
content is fingerprinted with a key derived from the API key (`hashing.py`).

- `model.py`      Entry, RunRecord, LockHolder and their JSON form
- `hashing.py`    Hasher: the one keyed hash of request content
- `base.py`       StateStore: what every backend offers (entries, blobs, per-collection locks)
- `directory.py`  State: the state directory (journal + snapshot) and its OS lock
- `journal.py`    the journal's line format
- `postgres.py`   PostgresState: tables, migrations, advisory locks (the `postgres` extra)
- `export.py`     the JSON document of `sprunner state export` / `import`
"""

from __future__ import annotations

from sprunner.atomic import write_atomically
from sprunner.state.base import StateConnectionLost, StateStore
from sprunner.state.directory import STATE_VERSION, State, locked
from sprunner.state.hashing import Hasher
from sprunner.state.model import Entry, LockHolder, RunRecord
from sprunner.state.open import opened

__all__ = [
    "STATE_VERSION",
    "Entry",
    "Hasher",
    "LockHolder",
    "RunRecord",
    "State",
    "StateConnectionLost",
    "StateStore",
    "locked",
    "opened",
    "write_atomically",
]
