"""The retry ledger: what the state remembers of one parent run's retries (SPEC §8).

Kept as the parent's `retry` blob (`StateStore.put_blob`), durable before each step is
relied on, so that an interrupted apply's retries resume under the never-twice rules:

- `parent_run`: the run whose failed jobs are being retried; a ledger for another run is
  stale and replaced;
- `attempts`: one record per retry begun, in order: written (without a run id) before the
  companion is PUT, given its run id as soon as the start answers, marked `done` once the
  run was seen to its end;
- `done`: every retry of `parent_run` is over: none is ever started again for that run.

`sprunner retry` keeps its own ledger (kind `retry.command`, keyed by the report's run), so
that it never replaces the ledger of a run an interrupted apply is still retrying.

Losing the ledger (a lost state) costs at most one retry run of the failed jobs, never a
duplicate of a run in flight: the companion's own entry holds its in-flight run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from sprunner.state import StateStore as State
from sprunner.util.killpoints import reached

KIND = "retry"
COMMAND_KIND = "retry.command"


@dataclass(frozen=True)
class Attempt:
    attempt: int  # 1 for the first retry
    collection_id: str | None = None  # the companion's id, once known
    run_id: str | None = None  # None until the start answers
    done: bool = False
    requests: int = 0
    credits: int = 0


@dataclass(frozen=True)
class Ledger:
    parent_run: str
    attempts: tuple[Attempt, ...] = ()
    done: bool = False
    kind: str = KIND  # the blob it is kept in (not saved in it)

    def with_attempt(self, attempt: Attempt) -> Ledger:
        """The ledger with `attempt` added, or replacing the record of the same number."""
        kept = tuple(a for a in self.attempts if a.attempt != attempt.attempt)
        ordered = tuple(sorted((*kept, attempt), key=lambda a: a.attempt))
        return replace(self, attempts=ordered)


def load(state: State, name: str, parent_run: str, *, kind: str = KIND) -> Ledger:
    """The ledger of `parent_run`'s retries (empty when the state knows none)."""
    value = state.get_blob(name, kind)
    if not isinstance(value, dict) or value.get("parent_run") != parent_run:
        return Ledger(parent_run, kind=kind)
    try:
        attempts = tuple(Attempt(**a) for a in value.get("attempts", ()))
    except TypeError:  # written by another version: start over, as with a lost state
        return Ledger(parent_run, kind=kind)
    return Ledger(parent_run, attempts, bool(value.get("done", False)), kind)


def save(state: State, name: str, ledger: Ledger) -> None:
    if state.get(name) is None:
        return  # the parent was forgotten meanwhile (deleted): nothing to attach it to
    value: dict[str, Any] = {
        "parent_run": ledger.parent_run,
        "attempts": [asdict(a) for a in ledger.attempts],
        "done": ledger.done,
    }
    state.put_blob(name, ledger.kind, value)
    reached("retry.ledger")
