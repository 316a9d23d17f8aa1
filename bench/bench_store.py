"""What the state store costs a collection: the transitions a first apply with runs and
results makes, on each engine, with the commits and fsyncs they take.

Per collection, in an apply's order, 64 collections at once (an apply's window), each API
answer 44 ms away: `creating` (durable), the create's POST (`synced()` first, as the API
client's hook does), `applied`, `run_pending` (durable), the run's POST (`synced()`
first), `run_started` (durable), three results checkpoints (durable, as a drain commits
pages), `run_finished`; and the display-only request digests, in one batch (`settle`).
Printed, a collection: CPU milliseconds of the event loop's thread, milliseconds it spent
in the store's SQL (wall: what delays the apply, fsyncs made inline included), commits
(durable ones in brackets) and fsyncs of SQLite's WAL, shared by the commits made before
each (`defer_durability`; in a worker thread); PostgreSQL commits synchronously, each a
round trip. Also, with `--inline`, the same without the
shared fsyncs (every durable commit fsyncs itself, as outside an apply).

    python -m bench.bench_store [--collections 1000] [--postgres URL] [--inline]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sprunner.jobfile.model import DesiredCollection
from sprunner.state import State, StateStore, lifecycle

RESULTS_COMMITS = 3
REQUESTS = 50
WINDOW = 64
LATENCY = 0.044


def collection(index: int) -> DesiredCollection:
    requests = tuple({"url": f"https://site{index}.example/{page}"} for page in range(REQUESTS))
    return DesiredCollection(name=f"c{index}", file="jobs.yaml", line=1, tags=(), requests=requests)


async def _one(store: StateStore, index: int, window: asyncio.Semaphore) -> None:
    item = collection(index)
    name, content = item.name, store.fingerprint_of(item)
    async with window:
        lifecycle.creating(store, name, file="jobs.yaml")
        await store.synced()
        await asyncio.sleep(LATENCY)  # the create's answer
        lifecycle.applied(store, name, f"id{index}", content=content, created=True)
        store.record_applied(item)
        pending = lifecycle.run_pending(store, name, content=content, at=time.time())
        await store.synced()
        await asyncio.sleep(LATENCY)  # the run's answer
        lifecycle.run_started(store, name, f"run{index}", pending)
    for page in range(RESULTS_COMMITS):
        async with window:
            await asyncio.sleep(LATENCY)  # a jobs page
            store.put_blob(name, "results", {"run_id": f"run{index}", "lines": page * 20})
    lifecycle.run_finished(store, name)


def one_apply(store: StateStore, collections: int, *, deferred: bool) -> float:
    """CPU seconds of the event loop's thread for every collection's transitions."""

    async def apply() -> None:
        window = asyncio.Semaphore(WINDOW)
        await asyncio.gather(*(_one(store, i, window) for i in range(collections)))
        await store.settle()

    start = time.thread_time()
    store.defer_durability(deferred)
    asyncio.run(apply())
    store.defer_durability(False)
    return time.thread_time() - start


def counted(store: StateStore) -> Callable[[], tuple[int, int, float]]:
    """(commits, durable commits, seconds the calling thread spent in the store's SQL)
    since now, counted from what the store sends."""
    counts = [0, 0]
    spent = [0.0]
    execute = store._execute

    def counting(sql: str, params: object = (), *, durable: bool | None = None) -> object:
        if durable is not None and not store._batched:
            counts[0] += 1
            counts[1] += durable
        start = time.perf_counter()
        try:
            return execute(sql, params, durable=durable)  # type: ignore[arg-type]
        finally:
            spent[0] += time.perf_counter() - start

    store._execute = counting  # type: ignore[method-assign, assignment]
    batch = store._transaction

    def batching(durable: bool) -> object:
        counts[0] += 1
        counts[1] += durable
        return batch(durable)

    store._transaction = batching  # type: ignore[method-assign, assignment]
    return lambda: (counts[0], counts[1], spent[0])


def measure(name: str, store: StateStore, collections: int, *, deferred: bool = True) -> None:
    commits = counted(store)
    fsyncs = [0]
    if isinstance(store, State):
        fsync = store._fsync_wal

        def counting(upto: int) -> None:
            fsyncs[0] += 1
            fsync(upto)

        store._fsync_wal = counting  # type: ignore[method-assign]
    seconds = one_apply(store, collections, deferred=deferred)
    total, durable, blocked = commits()
    store.close()
    per = 1000 / collections
    print(
        f"{name:14} {collections} collections, a collection: {seconds * per:.3f} ms of CPU, "
        f"{blocked * per:.3f} ms in SQL, {total / collections:.2f} commits "
        f"({durable / collections:.2f} durable), {fsyncs[0] / collections:.3f} shared fsyncs"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", help="also a PostgreSQL database (empty)")
    parser.add_argument("--inline", action="store_true", help="also without shared fsyncs")
    args = parser.parse_args()
    for deferred in (True, False) if args.inline else (True,):
        with tempfile.TemporaryDirectory() as tmp:
            store = State(Path(tmp), "https://api", key="k")
            label = "sqlite" if deferred else "sqlite inline"
            measure(label, store, args.collections, deferred=deferred)
    if args.postgres:
        from sprunner.state.postgres import PostgresState

        store = PostgresState.connect(args.postgres, "https://api", key="k")
        measure("postgresql", store, args.collections)


if __name__ == "__main__":
    main()
