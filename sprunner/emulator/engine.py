"""Collections, runs and jobs in memory, and how runs progress: by fetching, or by simulating.

The engine knows nothing of HTTP: routes in `app.py` call it and turn `EngineError` into
`{"detail": ...}` answers. Everything runs on the server's event loop; tests in another
thread may read `collections`, `runs` and `calls` (plain dicts: reads are safe in CPython).

- simulate: no network and deterministic; outcomes follow words in the URL (`simulate.py`:
  `flaky`, `timeout`, `fail`, `blocked`, `result-lost`, `size=N`), and the jobs of a run
  finish in pairs, evenly over `run_seconds`. Progress is computed from the elapsed time
  when asked, so thousands of runs cost nothing while nobody polls.
- fetch: each URL is fetched with httpx under a bounded concurrency and a per-request
  timeout (`fetcher.py`); private targets are refused unless `allow_private` (`ssrf.py`).
- Results are kept `result_retention` seconds after a job finishes (`results.py`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, deque
from typing import Any

from sprunner.emulator.bodies import size_from_url
from sprunner.emulator.fetcher import Fetcher
from sprunner.emulator.jobs import list_jobs, parse_query
from sprunner.emulator.model import EngineError, Job, Mode, StoredCollection, StoredRun
from sprunner.emulator.results import DEFAULT_RETENTION, Results
from sprunner.emulator.simulate import plan_outcome, schedule
from sprunner.emulator.validation import check_body

TIMELINE_LENGTH = 100_000

__all__ = ["Engine", "EngineError", "Mode"]
SWEEP_INTERVAL = 5.0  # seconds between frees of expired fetched pages


class Engine:
    def __init__(
        self,
        *,
        mode: Mode = "simulate",
        run_seconds: float = 1.0,
        fetch_timeout: float = 10.0,
        fetch_concurrency: int = 16,
        result_retention: float = DEFAULT_RETENTION,
        allow_private: bool = False,
        clock_skew: float = 0.0,
    ) -> None:
        self.mode = mode
        # Seconds the API's wall clock is ahead of ours (negative: behind): `created_at`, the
        # job timestamps and the `Date` header show it; what the emulator decides does not.
        self.clock_skew = clock_skew
        self._run_seconds = run_seconds
        self.fetch_timeout = fetch_timeout
        self.allow_private = allow_private
        self.results = Results(mode, result_retention)
        self.collections: dict[str, StoredCollection] = {}
        self.runs: dict[str, StoredRun] = {}
        self.calls: Counter[str] = Counter()  # per route kind, every call that arrived
        # (monotonic time, route kind) of the latest calls in arrival order, for tests and
        # benchmarks that check the order of an apply's calls (bounded: a long-lived server)
        self.timeline: deque[tuple[float, str]] = deque(maxlen=TIMELINE_LENGTH)
        self.idempotency: dict[str, tuple[int, dict[str, Any]]] = {}
        # simulate: runs of each (url, custom_id) so far, for `flaky` URLs
        self.attempts: Counter[tuple[str, str | None]] = Counter()
        self._fetch_concurrency = fetch_concurrency
        self._fetcher: Fetcher | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._swept = time.monotonic()

    def now(self) -> float:
        """The API's wall clock (epoch seconds), skewed by `clock_skew`."""
        return time.time() + self.clock_skew

    @property
    def run_seconds(self) -> float:
        """simulate: how long a run takes. Changing it also speeds up (or slows down) the
        runs under way, as tests do to let left-over runs complete."""
        return self._run_seconds

    @run_seconds.setter
    def run_seconds(self, value: float) -> None:
        self._run_seconds = value
        if self.mode == "simulate":
            now = time.monotonic()
            for run in list(self.runs.values()):
                schedule(run.jobs, value, elapsed=max(run.elapsed(now), 1e-9))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._fetcher is not None:
            await self._fetcher.aclose()

    # --- collections ----------------------------------------------------------------------

    def _collection(self, collection_id: str) -> StoredCollection:
        try:
            return self.collections[collection_id]
        except KeyError:
            raise EngineError(404, f"collection {collection_id} not found") from None

    def list_collections(self, name: str | None) -> list[dict[str, Any]]:
        return [
            {"name": c.name, "id": c.id}
            for c in self.collections.values()
            if name is None or c.name == name
        ]

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        collection = self._collection(collection_id)
        return {"id": collection.id, "name": collection.name}

    def create_collection(self, body: Any) -> dict[str, Any]:
        name, requests, duplicates = check_body(body)
        collection = StoredCollection(uuid.uuid4().hex, name, requests, self.now())
        self.collections[collection.id] = collection
        return self._write_answer(collection, "Collection created", duplicates)

    def update_collection(self, collection_id: str, body: Any) -> dict[str, Any]:
        collection = self._collection(collection_id)
        name, requests, duplicates = check_body(body)
        collection.name, collection.requests = name, requests
        return self._write_answer(collection, "Collection updated", duplicates)

    def delete_collection(self, collection_id: str) -> dict[str, Any]:
        # Runs already executed are kept (SPEC §1).
        collection = self.collections.pop(self._collection(collection_id).id)
        return {"id": collection.id, "message": "Collection deleted"}

    @staticmethod
    def _write_answer(collection: StoredCollection, message: str, dup: int) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": collection.id, "name": collection.name, "message": message}
        if dup:
            answer["duplicates_skipped"] = dup
        return answer

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, collection_id: str) -> dict[str, Any]:
        collection = self._collection(collection_id)
        run = StoredRun(uuid.uuid4().hex, collection.id, self.now(), time.monotonic())
        run.requests = collection.requests
        for index, request in enumerate(collection.requests):
            run.jobs.append(Job(index, request["url"], request.get("custom_id")))
        if self.mode == "simulate":
            self._simulate(run)
        else:
            self._start_fetching(run, list(collection.requests))
        self.runs[run.run_id] = run
        return self.run_answer(run)

    def _simulate(self, run: StoredRun) -> None:
        for job in run.jobs:
            key = (job.url, job.custom_id)
            planned = plan_outcome(job.url, self.attempts[key])
            self.attempts[key] += 1
            job.outcome, job.status_code = planned.outcome, planned.status_code
            job.message, job.block_reason = planned.message, planned.block_reason
            job.result_lost = "result-lost" in job.url
            job.body_size = size_from_url(job.url)
        schedule(run.jobs, self.run_seconds)

    def _run(self, collection_id: str, run_id: str) -> StoredRun:
        self._collection(collection_id)
        run = self.runs.get(run_id)
        if run is None or run.collection_id != collection_id:
            raise EngineError(404, f"run {run_id} not found")
        return run

    def get_run(self, collection_id: str, run_id: str) -> dict[str, Any]:
        return self.run_answer(self._run(collection_id, run_id))

    def list_runs(self, collection_id: str, status: str | None) -> dict[str, Any]:
        self._collection(collection_id)
        if status not in (None, "in_progress", "completed"):
            raise EngineError(422, "status_filter must be in_progress or completed")
        mine = [r for r in self.runs.values() if r.collection_id == collection_id]
        mine.sort(key=lambda r: r.started, reverse=True)
        items = []
        for run in mine:
            answer = self.run_answer(run)
            if status is None or answer["status"] == status:
                items.append(answer)
        return {"items": items, "total": len(items)}

    def run_answer(self, run: StoredRun) -> dict[str, Any]:
        now = time.monotonic()
        counts = Counter(run.status(job, now) for job in run.jobs)
        completed = counts["processing"] == 0 and (self.mode == "simulate" or run.fetch_done)
        answer: dict[str, Any] = {
            "run_id": run.run_id,
            "status": "completed" if completed else "in_progress",
            "total_requests": len(run.jobs),
            "success_requests": counts["completed"],
            "failed_requests": counts["failed"],
            "timeout_requests": counts["timeout"],
            "collection_id": run.collection_id,
            "created_at": run.created_at,
            "job_ids": [run.job_id(job.index) for job in run.jobs],
            # Jobs exist from the start of a run here: the listing is always complete.
            "all_jobs_persisted": True,
        }
        if completed:
            answer["failed_jobs"] = [
                {
                    "job_id": run.job_id(job.index),
                    "url": job.url,
                    "status": job.outcome,
                    "error": job.message,
                }
                for job in run.jobs
                if job.outcome != "completed"
            ]
        return answer

    # --- jobs and results ---------------------------------------------------------------------

    def list_jobs(self, collection_id: str, run_id: str, params: Any) -> dict[str, Any]:
        run = self._run(collection_id, run_id)
        query = parse_query(params)
        now = time.monotonic()
        self._sweep(now)
        return list_jobs(run, query, self.results, now)

    def get_result(self, collection_id: str, run_id: str, job_id: str) -> dict[str, Any]:
        run = self._run(collection_id, run_id)
        now = time.monotonic()
        self._sweep(now)
        return self.results.result(run, self.results.lookup(run, job_id), now)

    def _sweep(self, now: float) -> None:
        if now - self._swept >= SWEEP_INTERVAL:
            self._swept = now
            self.results.sweep(list(self.runs.values()), now)

    # --- fetch mode ---------------------------------------------------------------------------

    def _start_fetching(self, run: StoredRun, requests: list[dict[str, Any]]) -> None:
        if self._fetcher is None:
            self._fetcher = Fetcher(
                timeout=self.fetch_timeout,
                concurrency=self._fetch_concurrency,
                allow_private=self.allow_private,
            )
        task = asyncio.get_running_loop().create_task(self._fetcher.fetch_run(run, requests))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
