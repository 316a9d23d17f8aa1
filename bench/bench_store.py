"""What the state store costs a collection: the transitions a first apply with runs and
results makes, on each engine, with the commits and fsyncs they take.

Per collection, in an apply's order, 64 collections at once (an apply's window), each API
answer 44 ms away: `creating` (durable), the create's POST, `applied`, `run_pending`
(durable), the run's POST, `run_started` (durable), three results checkpoints (durable,
as a drain commits pages), `run_finished`; and the display-only request digests, in one
batch (`settle`). Printed, a collection: CPU milliseconds of the event loop's thread,
milliseconds it spent in the store's SQL (wall: what delays the apply, its fsyncs
included: SQLite's durable commits are synchronous=FULL, inline), and commits (durable
ones in brackets); PostgreSQL commits synchronously, each a round trip.

    python -m bench.bench_store [--collections 1000] [--postgres URL]
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
        await asyncio.sleep(LATENCY)  # the create's answer
        lifecycle.applied(store, name, f"id{index}", content=content, created=True)
        store.record_applied(item)
        pending = lifecycle.run_pending(store, name, content=content, at=time.time())
        await asyncio.sleep(LATENCY)  # the run's answer
        lifecycle.run_started(store, name, f"run{index}", pending)
    for page in range(RESULTS_COMMITS):
        async with window:
            await asyncio.sleep(LATENCY)  # a jobs page
            store.put_blob(name, "results", {"run_id": f"run{index}", "lines": page * 20})
    lifecycle.run_finished(store, name)


def one_apply(store: StateStore, collections: int) -> float:
    """CPU seconds of the event loop's thread for every collection's transitions."""

    async def apply() -> None:
        window = asyncio.Semaphore(WINDOW)
        await asyncio.gather(*(_one(store, i, window) for i in range(collections)))
        await store.settle()

    start = time.thread_time()
    asyncio.run(apply())
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


def measure(name: str, store: StateStore, collections: int) -> None:
    commits = counted(store)
    seconds = one_apply(store, collections)
    total, durable, blocked = commits()
    store.close()
    per = 1000 / collections
    print(
        f"{name:14} {collections} collections, a collection: {seconds * per:.3f} ms of CPU, "
        f"{blocked * per:.3f} ms in SQL, {total / collections:.2f} commits "
        f"({durable / collections:.2f} durable)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", help="also a PostgreSQL database (empty)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", State(Path(tmp), "https://api", key="k"), args.collections)
    if args.postgres:
        from sprunner.state.postgres import PostgresState

        store = PostgresState.connect(args.postgres, "https://api", key="k")
        measure("postgresql", store, args.collections)


if __name__ == "__main__":
    main()
