"""Collections and runs in memory, and how runs progress: by fetching, or by simulating.

The engine knows nothing of HTTP: routes in `app.py` call it and turn `EngineError` into
`{"detail": ...}` answers. Everything runs on the server's event loop; tests in another
thread may read `collections`, `runs` and `calls` (plain dicts: reads are safe in CPython).

- simulate: no network and deterministic. A URL containing `fail` fails, one containing
  `timeout` times out, any other succeeds; the jobs of a run finish evenly over
  `run_seconds`. Progress is computed from the elapsed time when asked, so thousands of
  runs cost nothing while nobody polls.
- fetch: each URL is fetched with httpx under a bounded concurrency and a per-request
  timeout; a connection error or a 5xx answer fails the job, a timeout times it out.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from sprunner.schemafiles import request_enums

Mode = Literal["fetch", "simulate"]
Outcome = Literal["success", "failed", "timeout"]

REQUEST_FIELDS = frozenset(
    {
        *("url", "format", "browser", "browser_type", "use_proxy", "screenshot", "actions"),
        *("language", "http_method", "headers", "cookies", "window_size", "extract"),
        *("network_capture", "retry_on_block", "block_resources", "block_requests", "custom_id"),
    }
)
_ENUMS = request_enums()
_BOOLS = ("browser", "screenshot", "retry_on_block")


class EngineError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


@dataclass
class StoredCollection:
    id: str
    name: str
    requests: list[dict[str, Any]]
    created_at: float


@dataclass
class StoredRun:
    run_id: str
    collection_id: str
    created_at: float  # wall clock, for the API
    started: float  # monotonic, for progress
    urls: list[str]
    outcomes: list[Outcome] = field(default_factory=list)  # simulate: known up front
    errors: list[str] = field(default_factory=list)
    # fetch: filled as jobs finish, as (job index, outcome, error)
    finished: list[tuple[int, Outcome, str]] = field(default_factory=list)
    fetch_done: bool = False


def _check_request(index: int, request: Any) -> dict[str, Any]:
    where = f"requests[{index}]"
    if not isinstance(request, dict):
        raise EngineError(422, f"{where}: expected an object")
    unknown = sorted(set(request) - REQUEST_FIELDS)
    if unknown:
        raise EngineError(422, f"{where}: unknown field(s): {', '.join(unknown)}")
    url = request.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(422, f"{where}.url: an absolute http(s) URL is required")
    for key, allowed in _ENUMS.items():
        if key in request and request[key] not in allowed:
            raise EngineError(422, f"{where}.{key}: must be one of {', '.join(allowed)}")
    for key in _BOOLS:
        if key in request and not isinstance(request[key], bool):
            raise EngineError(422, f"{where}.{key}: must be a boolean")
    custom_id = request.get("custom_id")
    if custom_id is not None and (not isinstance(custom_id, str) or len(custom_id) > 255):
        raise EngineError(422, f"{where}.custom_id: a string of at most 255 characters")
    return request


def check_body(body: Any) -> tuple[str, list[dict[str, Any]], int]:
    """Validate `{name, requests}`; return the name, the distinct requests, duplicates dropped."""
    if not isinstance(body, dict):
        raise EngineError(422, "body must be a JSON object")
    unknown = sorted(set(body) - {"name", "requests"})
    if unknown:
        raise EngineError(422, f"unknown field(s): {', '.join(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EngineError(422, "name: a non-empty string is required")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise EngineError(422, "requests: a list is required")
    distinct: dict[str, dict[str, Any]] = {}
    for index, request in enumerate(requests):
        checked = _check_request(index, request)
        distinct.setdefault(json.dumps(checked, sort_keys=True), checked)
    return name, list(distinct.values()), len(requests) - len(distinct)


def simulated_outcome(url: str) -> tuple[Outcome, str]:
    if "timeout" in url:
        return "timeout", "Timed out (simulated)"
    if "fail" in url:
        return "failed", "HTTP 500 from target (simulated)"
    return "success", ""


class Engine:
    def __init__(
        self,
        *,
        mode: Mode = "simulate",
        run_seconds: float = 1.0,
        fetch_timeout: float = 10.0,
        fetch_concurrency: int = 16,
    ) -> None:
        self.mode = mode
        self.run_seconds = run_seconds
        self.fetch_timeout = fetch_timeout
        self.collections: dict[str, StoredCollection] = {}
        self.runs: dict[str, StoredRun] = {}
        self.calls: Counter[str] = Counter()  # per route kind, every call that arrived
        self.idempotency: dict[str, tuple[int, dict[str, Any]]] = {}
        self._fetch_concurrency = fetch_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

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
        collection = StoredCollection(uuid.uuid4().hex, name, requests, time.time())
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
        urls = [r["url"] for r in collection.requests]
        run = StoredRun(uuid.uuid4().hex, collection.id, time.time(), time.monotonic(), urls)
        if self.mode == "simulate":
            for url in urls:
                outcome, error = simulated_outcome(url)
                run.outcomes.append(outcome)
                run.errors.append(error)
        else:
            self._start_fetching(run, list(collection.requests))
        self.runs[run.run_id] = run
        return self.run_answer(run)

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
                items.append({**answer, "created_at": run.created_at})
        return {"items": items, "total": len(items)}

    def _finished(self, run: StoredRun) -> list[tuple[int, Outcome, str]]:
        if self.mode != "simulate":
            return run.finished
        total = len(run.urls)
        elapsed = time.monotonic() - run.started
        if self.run_seconds <= 0 or total == 0:
            done = total
        else:
            # Job i finishes at run_seconds * (i + 1) / total.
            done = min(total, int(elapsed * total / self.run_seconds + 1e-9))
        return [(i, run.outcomes[i], run.errors[i]) for i in range(done)]

    def run_answer(self, run: StoredRun) -> dict[str, Any]:
        finished = self._finished(run)
        counts = Counter(outcome for _, outcome, _ in finished)
        completed = len(finished) == len(run.urls) and (self.mode == "simulate" or run.fetch_done)
        answer: dict[str, Any] = {
            "run_id": run.run_id,
            "status": "completed" if completed else "in_progress",
            "total_requests": len(run.urls),
            "success_requests": counts["success"],
            "failed_requests": counts["failed"],
            "timeout_requests": counts["timeout"],
            "collection_id": run.collection_id,
        }
        if completed:
            answer["failed_jobs"] = [
                {"job_id": f"{run.run_id}-{i}", "url": run.urls[i], "status": outcome, "error": err}
                for i, outcome, err in sorted(finished)
                if outcome != "success"
            ]
        return answer

    # --- fetch mode ---------------------------------------------------------------------------

    def _start_fetching(self, run: StoredRun, requests: list[dict[str, Any]]) -> None:
        if self._http is None:
            self._semaphore = asyncio.Semaphore(self._fetch_concurrency)
            self._http = httpx.AsyncClient(timeout=self.fetch_timeout, follow_redirects=True)
        task = asyncio.get_running_loop().create_task(self._fetch_all(run, requests))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch_all(self, run: StoredRun, requests: list[dict[str, Any]]) -> None:
        await asyncio.gather(*(self._fetch_one(run, i, r) for i, r in enumerate(requests)))
        run.fetch_done = True

    async def _fetch_one(self, run: StoredRun, index: int, request: Mapping[str, Any]) -> None:
        assert self._http is not None and self._semaphore is not None
        outcome: Outcome = "success"
        error = ""
        method_spec = request.get("http_method") or {}
        method = str(method_spec.get("method", "get")).upper()
        async with self._semaphore:
            try:
                response = await self._http.request(
                    method,
                    request["url"],
                    headers=request.get("headers") or None,
                    cookies=request.get("cookies") or None,
                    content=_payload(method_spec),
                )
                if response.status_code >= 500:
                    outcome, error = "failed", f"HTTP {response.status_code} from target"
            except httpx.TimeoutException:
                outcome, error = "timeout", f"Timed out after {self.fetch_timeout:g} s"
            except httpx.HTTPError as exc:
                outcome, error = "failed", f"{type(exc).__name__}: {exc}".rstrip(": ")
            except Exception as exc:  # a bad header value, say: a failed job, not a dead run
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        run.finished.append((index, outcome, error))


def _payload(method_spec: Mapping[str, Any]) -> bytes | None:
    payload = method_spec.get("payload")
    if payload is None:
        return None
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
