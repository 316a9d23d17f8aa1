"""A collection's life, written down in one place (SPEC §10, "One lifecycle").

    declared -> applied (content) -> run pending -> run started (run id, content)
             -> run finished (counts) -> results drained -> retried -> published -> judged

| state           | recorded as                                   | written by                   |
| --------------- | --------------------------------------------- | ---------------------------- |
| declared        | `Entry.file`, the declaring job file          | `declared`, `creating`, ...  |
| applied         | `Entry.id`, `fingerprint`, `created`          | `creating`, `updating`,      |
|                 |                                               | `applied`, `forgotten`       |
| run pending     | `Entry.inflight` without a run id, its content| `run_pending`                |
| run started     | `inflight` = `last_run` (id, time, content);  | `run_started`, `run_adopted`,|
|                 | `started_fingerprint` = that content          | `run_joined`, `run_seen`     |
| run finished    | `inflight` cleared (the counts: the report)   | `run_finished`, `run_held`   |
| results drained | values `results` (the drain's checkpoint),    | results/journal.py (kinds),  |
|                 | `results.retry`, `results.pending`            | results/delivery.py          |
| retried         | value `retry` / `retry.command` (the ledger), | retry/loop.py, retry/ledger  |
|                 | the companion `<name>.retry`'s own entry      |                              |
| published       | value `results`, its checkpoint's publication | results/delivery.py,         |
|                 |                                               | results/publication.py       |
| judged          | value `verdict` (the latest verdict, after    | runs/verdict.py (`record`,   |
|                 | the retries)                                  | read by each health signal)  |

Every transition is one function here that commits; the values of the later states are
written by their modules through `StateStore.put_blob` (durable before the file, manifest
or report that depends on them). The promises each one keeps are SPEC §10's:

- *one lifecycle*: each step is committed before anything that depends on it is sent. A
  transition made `durable` is on the disk when it returns: those that an outside effect
  depends on (`creating`, `updating`, `companion` before their POST or PUT, `run_pending`
  before the run's POST, `run_adopted`, `run_held`). The others are committed (a kill -9
  keeps them) and reach the disk with the next durable commit; lost to a power cut, each
  is found again by looking (the durable mark before them says where), never by sending
  twice. `run_started` is one of them, but `required`: a store gone raises there;
- *nothing created or run twice* (SPEC §4): a create and a run start are marked before
  they are sent, so a kill at any point is resolved by looking, never by sending again;
- *a change is never lost*: the content a run starts with is recorded with its pending
  start, and adopting a run records the content *that* run started with;
- *prune is scoped*: each collection records the job file that declares it;
- *every run the API started is reported*: a pending start is durable before the POST, so
  the next apply adopts the run even when the store went away right after the answer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sprunner.state.model import RunRecord

if TYPE_CHECKING:
    from sprunner.jobfile.model import DesiredCollection
    from sprunner.state.store import StateStore


# -- declared and applied ------------------------------------------------------------------
def declared(store: StateStore, name: str, *, file: str) -> None:
    """A collection left unchanged is declared by `file` (moved there, or recorded by an
    older sprunner without one). Keeps *prune is scoped*. Not durable: losing it costs
    nothing but a prune left for later (an unknown file is never pruned)."""
    entry = store.get(name)
    if entry is not None and entry.file != file:
        store.update(name, file=file, durable=False)


def creating(store: StateStore, name: str, *, file: str | None) -> None:
    """Before a create is sent, durable: a collection found under this name after a kill is
    sprunner's (pruneable, declared by `file`), its id unknown. Keeps *nothing created
    twice*: the next apply looks for it by name instead of creating it again."""
    store.update(name, id="", fingerprint=None, creating=True, file=file)


def updating(store: StateStore, name: str, remote_id: str, *, created: bool) -> None:
    """Before a PUT is sent, durable: the content last applied becomes unknown, so a PUT
    cut short is sent again by the next apply rather than trusted."""
    store.update(name, id=remote_id, fingerprint=None, created=created, creating=False)


def applied(
    store: StateStore, name: str, collection_id: str, *, content: str, created: bool, **extra: Any
) -> None:
    """A create or a PUT answered: the id, and the keyed fingerprint of the content now
    remote. Not durable on its own: lost to a power cut, the next apply finds the name
    (still `creating`, or its fingerprint unknown) and PUTs again, never creates again."""
    store.update(
        name,
        id=collection_id,
        fingerprint=content,
        created=created,
        creating=False,
        **extra,
        durable=False,
    )


def companion(store: StateStore, name: str, remote_id: str | None, *, parent: str) -> None:
    """Before a retry companion is created or PUT, durable: whatever happens next, `name`
    is `parent`'s companion, never unmanaged, pruned with it (its declaring file)."""
    parent_entry = store.get(parent)
    file = parent_entry.file if parent_entry is not None else None
    store.update(name, id=remote_id or "", companion_of=parent, created=True, file=file)


def forgotten(store: StateStore, name: str) -> None:
    """Deleted by sprunner, or gone remotely: the entry goes (its values stay)."""
    store.forget(name)


# -- runs ------------------------------------------------------------------------------------
def run_pending(store: StateStore, name: str, *, content: str | None, at: float) -> RunRecord:
    """Before `POST .../run`, durable: a start sent, with the content it starts with.
    Keeps *nothing run twice* (a kill before the answer is resolved by listing the runs)
    and *a change is never lost* (whoever adopts that run learns its content)."""
    record = RunRecord(None, at, content)
    store.update(name, inflight=record)
    return record


def run_started(store: StateStore, name: str, run_id: str, pending: RunRecord) -> RunRecord:
    """The start answered (or our run found after an ambiguous failure): the run id, and
    the content it started with becomes the last started content. Committed, and never
    left in memory only: a store that went away makes it raise, so the run is reported by
    its id and not waited for by an apply whose locks are gone (`runs.start.Started`). Not
    synced on its own: lost to a power cut, the durable pending start before it remains,
    and the next apply resolves it to this run by listing the runs, as after a kill
    between the POST and its answer (an fsync a collection saved: bench/README.md)."""
    record = replace(pending, run_id=run_id)
    _started(store, name, record, durable=False)
    return record


def run_adopted(store: StateStore, name: str, record: RunRecord) -> None:
    """A run an interrupted apply left in flight (`record`: its id found, and the content
    recorded at its start) is ours again. Keeps *a change is never lost*: the started
    content is that run's, never the content declared now."""
    _started(store, name, record)


def _started(store: StateStore, name: str, record: RunRecord, *, durable: bool = True) -> None:
    changes: dict[str, Any] = {"inflight": record, "last_run": record}
    if record.content is not None:
        changes["started_fingerprint"] = record.content
    store.update(name, durable=durable, required=True, **changes)


def run_joined(store: StateStore, name: str, run_id: str, *, at: float) -> RunRecord:
    """With `overlap: skip`, a run in progress remotely (anyone's) is waited for instead of
    starting one. Its content is unknown unless it is the run last recorded, so a pending
    change stays pending (*a change is never lost*). Not durable: lost, the next apply
    lists the runs in progress and joins it again."""
    entry = store.get(name)
    last = entry.last_run if entry is not None else None
    record = last if last is not None and last.run_id == run_id else RunRecord(run_id, at)
    store.update(name, inflight=record, last_run=record, durable=False)
    return record


def run_seen(store: StateStore, name: str, collection_id: str, run_id: str, *, at: float) -> None:
    """The newest run the API lists, learned before a start because the state knew none (a
    lost state): known from now on, an ambiguous start never takes it for its own. Not
    durable on its own: the durable `run_pending` that follows it, before any POST, puts it
    on the disk with it (the WAL is written in order)."""
    store.update(name, id=collection_id, last_run=RunRecord(run_id, at), durable=False)


def run_held(store: StateStore, name: str, run_id: str) -> None:
    """A completed run whose failed jobs are being retried stays in flight until its
    retries are over: an apply killed meanwhile is adopted and its ledger resumed."""
    entry = store.get(name)
    if entry is not None and entry.last_run is not None and entry.last_run.run_id == run_id:
        store.update(name, inflight=entry.last_run)
    elif entry is not None:
        at = entry.last_run.started_at if entry.last_run is not None else 0.0
        store.update(name, inflight=RunRecord(run_id, at))


def run_finished(store: StateStore, name: str) -> None:
    """Seen to its end (completed, timed out, its retries over): no longer in flight. Not
    durable on its own: lost to a power cut, the next apply adopts the finished run again
    and reports it, never starts it again."""
    if store.get(name) is not None:
        store.update(name, inflight=None, durable=False)


def change_pending(store: StateStore, desired: DesiredCollection) -> bool:
    """`when: changed`: whether no run started with this content is recorded (*a change is
    never lost*). Unknown (no entry, no record, another key) counts as changed."""
    entry = store.get(desired.name)
    if entry is None or entry.started_fingerprint is None:
        return True
    return entry.started_fingerprint != store.fingerprint_of(desired)
