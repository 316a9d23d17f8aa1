"""The client against the emulator over real sockets: SPEC §1's sequence, and every fault.

The two are independent readings of the contract (the emulator does not import the client),
so a disagreement here is a misunderstanding in one of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from sprunner.api.client import ApiClient
from sprunner.api.errors import (
    AmbiguousApiError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    TransportError,
    UnreachableError,
)
from sprunner.api.models import Run
from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.sites import Site, refused_url

T = TypeVar("T")
PREFIX = "/v1/async/collections"


def with_client(handle: EmulatorHandle, body: Callable[[ApiClient], Awaitable[T]], **kw: Any) -> T:
    async def go() -> T:
        kw.setdefault("max_backoff", 0.05)
        async with ApiClient(base_url=handle.url, api_key=handle.api_key, **kw) as api:
            return await body(api)

    return asyncio.run(go())


async def wait_for_run(api: ApiClient, run: Run, *, deadline: float = 10.0) -> list[Run]:
    """Poll until completed; return every answer seen, so tests can check progress."""
    seen = [run]
    end = time.monotonic() + deadline
    while not seen[-1].done:
        assert time.monotonic() < end, f"run not completed within {deadline} s: {seen[-1]}"
        await asyncio.sleep(0.02)
        seen.append(await api.get_run(run.collection_id, run.run_id))
    return seen


# --- the documented sequence -------------------------------------------------------------


def test_simulate_mode_walks_the_api_sequence(emulator: EmulatorHandle) -> None:
    requests = [{"url": f"https://shop.test/p/{i}"} for i in range(8)]
    requests += [{"url": "https://shop.test/fail"}, {"url": "https://shop.test/timeout"}]

    async def body(api: ApiClient) -> None:
        created = await api.create_collection("shop", requests[:2], idempotency_key="k1")
        assert created.name == "shop" and created.id
        assert [c.name for c in await api.list_collections()] == ["shop"]
        assert await api.list_collections(name="other") == []
        assert (await api.get_collection(created.id)).name == "shop"
        updated = await api.update_collection(created.id, "shop", requests)
        assert updated.id == created.id
        run = await api.start_run(created.id)
        assert run.status == "in_progress" and run.total_requests == 10
        seen = await wait_for_run(api, run)
        done = seen[-1]
        counts = [r.success_requests + r.failed_requests + r.timeout_requests for r in seen]
        assert counts == sorted(counts), "counts only rise"
        assert any(0 < c < 10 for c in counts), "progress is visible while in progress"
        assert all(not r.failed_jobs for r in seen[:-1])
        assert (done.success_requests, done.failed_requests, done.timeout_requests) == (8, 1, 1)
        assert {(j.url, j.status) for j in done.failed_jobs} == {
            ("https://shop.test/fail", "failed"),
            ("https://shop.test/timeout", "timeout"),
        }
        assert all(j.error for j in done.failed_jobs)
        second = await api.start_run(created.id)
        listed = await api.list_runs(created.id)
        assert [r.run_id for r in listed] == [second.run_id, run.run_id], "newest first"
        assert all(isinstance(r.created_at, float) for r in listed)
        assert [r.run_id for r in await api.list_runs(created.id, status="completed")] == [
            run.run_id
        ]
        await api.delete_collection(created.id)
        with pytest.raises(NotFoundError):
            await api.get_collection(created.id)

    with_client(emulator, body)
    assert emulator.engine.calls["create"] == 1 and emulator.engine.calls["run"] == 2


def test_fetch_mode_fetches_each_url_for_real(
    fetch_emulator: EmulatorHandle, target_site: Site
) -> None:
    urls = [f"{target_site.url}/ok", f"{target_site.url}/error", f"{target_site.url}/hang"]
    urls.append(refused_url())

    async def body(api: ApiClient) -> Run:
        created = await api.create_collection(
            "site", [{"url": u} for u in urls], idempotency_key="k"
        )
        run = await api.start_run(created.id, name="site")
        return (await wait_for_run(api, run))[-1]

    done = with_client(fetch_emulator, body)
    assert (done.success_requests, done.failed_requests, done.timeout_requests) == (1, 2, 1)
    jobs = {j.url: j for j in done.failed_jobs}
    assert jobs[urls[1]].status == "failed" and "500" in jobs[urls[1]].error
    assert jobs[urls[2]].status == "timeout" and "Timed out" in jobs[urls[2]].error
    assert jobs[urls[3]].status == "failed" and "Connect" in jobs[urls[3]].error
    assert "/ok" in target_site.hits


# --- the contract's edges, read with a plain HTTP client -----------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"requests": []},
        {"name": "a", "requests": "https://x.test/"},
        {"name": "a", "requests": [{"format": "html"}]},
        {"name": "a", "requests": [{"url": "/relative"}]},
        {"name": "a", "requests": [{"url": "ftp://x.test/"}]},
        {"name": "a", "requests": [{"url": "https://x.test/", "colour": "red"}]},
        {"name": "a", "requests": [{"url": "https://x.test/", "custom_id": "x" * 256}]},
    ],
)
def test_bad_bodies_are_422_with_detail(emulator: EmulatorHandle, body: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.url, headers=headers) as http:
        answer = http.post(PREFIX, json=body)
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], str)
    assert emulator.engine.collections == {}


def test_statuses_and_shapes(emulator: EmulatorHandle) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.url, headers=headers) as http:
        assert http.get(PREFIX, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(emulator.url + PREFIX).status_code == 401
        assert http.get(f"{PREFIX}/nope").json() == {"detail": "collection nope not found"}
        assert http.get("/elsewhere").status_code == 404
        assert "detail" in http.get("/elsewhere").json()
        created = http.post(PREFIX, json={"name": "a", "requests": [{"url": "https://x.test/"}]})
        assert created.status_code == 201 and set(created.json()) >= {"id", "name", "message"}
        cid = created.json()["id"]
        assert http.get(f"{PREFIX}/{cid}/runs/nope").status_code == 404
        assert http.get(f"{PREFIX}/{cid}/runs?status_filter=bogus").status_code == 422
        started = http.post(f"{PREFIX}/{cid}/run")
        assert started.status_code == 201
        assert set(started.json()) == {
            "run_id", "status", "total_requests", "success_requests", "failed_requests",
            "timeout_requests", "collection_id", "created_at", "job_ids", "all_jobs_persisted",
        }  # fmt: skip
        listed = http.get(f"{PREFIX}/{cid}/runs").json()
        assert listed["total"] == 1 and isinstance(listed["items"][0]["created_at"], float)
        assert http.put(f"{PREFIX}/nope", json={"name": "a", "requests": []}).status_code == 404
        assert http.delete(f"{PREFIX}/{cid}").status_code == 200
        assert cid not in emulator.engine.collections and len(emulator.engine.runs) == 1


def test_client_maps_emulator_refusals(emulator: EmulatorHandle) -> None:
    async def body(api: ApiClient) -> None:
        with pytest.raises(InvalidRequestError, match=r"requests\[0\]\.url"):
            await api.create_collection("a", [{"url": "nope"}], idempotency_key="k")
        with pytest.raises(NotFoundError, match="'shop'"):
            await api.start_run("missing", name="shop")

    with_client(emulator, body)

    async def wrong_key(api: ApiClient) -> None:
        await api.list_collections()

    with running_emulator(api_key="right") as other, pytest.raises(AuthenticationError):
        asyncio.run(_with_key(other.url, "wrong", wrong_key))


async def _with_key(url: str, key: str, body: Callable[[ApiClient], Awaitable[None]]) -> None:
    async with ApiClient(base_url=url, api_key=key) as api:
        await body(api)


# --- faults ---------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(emulator: EmulatorHandle) -> None:
    async def body(api: ApiClient) -> tuple[str, str]:
        first = await api.create_collection("a", [], idempotency_key="same")
        again = await api.create_collection(
            "a", [{"url": "https://x.test/"}], idempotency_key="same"
        )
        return first.id, again.id

    first, again = with_client(emulator, body)
    assert first == again and len(emulator.engine.collections) == 1


def test_error_after_create_is_ambiguous_and_a_keyed_retry_does_not_duplicate(
    emulator: EmulatorHandle,
) -> None:
    emulator.faults.once("error-after", route="create")

    async def body(api: ApiClient) -> None:
        with pytest.raises(AmbiguousApiError):
            await api.create_collection("a", [], idempotency_key="k")
        assert len(await api.list_collections(name="a")) == 1  # the work was done
        await api.create_collection("a", [], idempotency_key="k")

    with_client(emulator, body)
    assert len(emulator.engine.collections) == 1


def test_without_idempotency_a_blind_retry_duplicates(emulator: EmulatorHandle) -> None:
    """Why the reconciler lists by name after an ambiguous create: old deployments."""
    emulator.faults.add("no-idempotency")
    emulator.faults.once("drop-after", route="create")

    async def body(api: ApiClient) -> int:
        with pytest.raises(AmbiguousApiError) as caught:
            await api.create_collection("a", [], idempotency_key="k")
        assert isinstance(caught.value.cause, TransportError)
        await api.create_collection("a", [], idempotency_key="k")
        return len(await api.list_collections(name="a"))

    assert with_client(emulator, body) == 2


def test_error_before_a_run_does_nothing_and_drop_after_a_run_starts_it(
    emulator: EmulatorHandle,
) -> None:
    async def body(api: ApiClient) -> None:
        cid = (await api.create_collection("a", [], idempotency_key="k")).id
        emulator.faults.once("error-before", route="run")
        with pytest.raises(AmbiguousApiError):
            await api.start_run(cid)
        assert await api.list_runs(cid) == []
        emulator.faults.once("drop-after", route="run")
        with pytest.raises(AmbiguousApiError):
            await api.start_run(cid)
        assert len(await api.list_runs(cid)) == 1

    with_client(emulator, body)


def test_transient_faults_on_reads_are_retried(emulator: EmulatorHandle) -> None:
    for spec in ("error-before:1", "error-after:1", "drop-after:1", "rate-429:1"):
        emulator.faults.add(spec, route="list", times=2)

    async def body(api: ApiClient) -> tuple[int, int]:
        for _ in range(4):
            assert await api.list_collections() == []
        return api.calls, api.rate_limited

    calls, limited = with_client(emulator, body, max_attempts=10)
    assert calls == 4 + 8 and limited == 2
    assert emulator.faults.active == []


def test_probabilistic_faults_are_seeded() -> None:
    def fired(seed: int) -> list[bool]:
        with (
            running_emulator(faults=["error-before:0.5"], seed=seed) as handle,
            httpx.Client(base_url=handle.url) as http,
        ):
            return [http.get(PREFIX).status_code == 503 for _ in range(20)]

    first = fired(7)
    assert first == fired(7) and any(first) and not all(first)


def test_slow_answers_time_out_as_transport_errors(emulator: EmulatorHandle) -> None:
    emulator.faults.add("slow:0.5", route="get")

    async def body(api: ApiClient) -> None:
        cid = (await api.create_collection("a", [], idempotency_key="k")).id
        with pytest.raises(TransportError) as caught:
            await api.get_collection(cid)
        assert not isinstance(caught.value, UnreachableError)

    with_client(emulator, body, timeout=0.1, max_attempts=2)


def test_unreachable_api() -> None:
    async def body() -> None:
        async with ApiClient(base_url=refused_url(), api_key="k", max_attempts=2) as api:
            await api.list_collections()

    with pytest.raises(UnreachableError):
        asyncio.run(body())


def test_rate_limit_fault_is_learned_by_the_shared_limiter() -> None:
    with running_emulator(faults=["rate-limit:40"]) as handle:

        async def body(api: ApiClient) -> tuple[int, int]:
            await asyncio.gather(*(api.list_collections() for _ in range(120)))
            return api.calls, api.rate_limited

        calls, limited = with_client(handle, body, max_backoff=2.0, max_attempts=10)
    assert calls - limited == 120
    assert limited <= 15
