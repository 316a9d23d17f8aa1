"""The runner's per-collection pipeline, without sockets: an in-memory fake of the API (a
fake of the API, not of the runner), a real state directory, an injected clock."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from sprunner.api.client import ApiClient
from sprunner.api.errors import AmbiguousApiError, NotFoundError, ServerError
from sprunner.api.models import CollectionRef, Run, WriteResult
from sprunner.apply.runner import Runner
from sprunner.jobfile.model import DesiredCollection, MaxFailed, RunPolicy
from sprunner.output.ui import HumanOutput
from sprunner.reconcile.plan import build_plan
from sprunner.report.outcome import Progress
from sprunner.state import State
from sprunner.util.backoff import Backoff

FAST = Backoff(base=0.001, cap=0.001, attempts=3)


class FakeApi:
    """The collections API in memory: runs complete on their first poll."""

    def __init__(self, *, failed_per_run: int = 0, ambiguous_creates: int = 0) -> None:
        self.collections: dict[str, str] = {}  # id -> name
        self.runs: dict[str, Run] = {}
        self.failed_per_run = failed_per_run
        self.ambiguous_creates = ambiguous_creates  # that took effect nonetheless
        self.sizes: dict[str, int] = {}
        self._ids = itertools.count(1)

    async def list_collections(self, *, name: str | None = None) -> list[CollectionRef]:
        return [CollectionRef(i, n) for i, n in self.collections.items() if name in (None, n)]

    async def get_collection(self, collection_id: str, *, name: str | None = None) -> CollectionRef:
        if collection_id not in self.collections:
            raise NotFoundError("not found", call="get collection", status=404)
        return CollectionRef(collection_id, self.collections[collection_id])

    async def create_collection(
        self, name: str, requests: Sequence[Mapping[str, Any]], *, idempotency_key: str
    ) -> WriteResult:
        cid = f"c{next(self._ids)}"
        self.collections[cid], self.sizes[cid] = name, len(requests)
        if self.ambiguous_creates:
            self.ambiguous_creates -= 1
            error = ServerError("server error", call="create collection", status=502)
            raise AmbiguousApiError(error)
        return WriteResult(cid, name)

    async def start_run(self, collection_id: str, *, name: str | None = None) -> Run:
        rid = f"r{next(self._ids)}"
        total = self.sizes[collection_id]
        run = Run(rid, collection_id, "in_progress", total, 0, 0, 0, created_at=1000.0)
        self.runs[rid] = run
        return run

    async def get_run(self, collection_id: str, run_id: str, *, name: str | None = None) -> Run:
        run = self.runs[run_id]
        bad = min(self.failed_per_run, run.total_requests)
        done = replace(
            run, status="completed", success_requests=run.total_requests - bad, failed_requests=bad
        )
        self.runs[run_id] = done
        return done

    async def list_runs(
        self, collection_id: str, *, status: str | None = None, name: str | None = None
    ) -> list[Run]:
        runs = [r for r in self.runs.values() if r.collection_id == collection_id]
        return [r for r in reversed(runs) if status in (None, r.status)]


def desired(name: str, requests: int = 2, *, max_failed: int = 0) -> DesiredCollection:
    policy = RunPolicy(poll_interval=0.01, timeout=5.0, max_failed=MaxFailed(count=max_failed))
    return DesiredCollection(
        name=name,
        file="jobs.yaml",
        line=1,
        tags=(),
        requests=tuple({"url": f"https://a.example/{name}/{n}"} for n in range(requests)),
        run=policy,
    )


def apply(
    api: FakeApi, state_dir: Path, *collections: DesiredCollection, **kw: Any
) -> tuple[Runner, list[tuple[Progress, ...]]]:
    state = State(state_dir, "https://api.example", key="test-key")
    plan = build_plan(
        collections,
        [],
        state.entries(),
        hasher=state.hasher,
        declared=[c.name for c in collections],
    )
    output = HumanOutput(stdout=io.StringIO(), stderr=io.StringIO())
    runner = Runner(
        cast(ApiClient, api),
        state,
        plan,
        output=output,
        apply_id="a",
        clock=lambda: 1000.0,
        backoff=FAST,
        **kw,
    )
    snapshots: list[tuple[Progress, ...]] = []

    async def go() -> None:
        work = asyncio.ensure_future(runner.execute())
        while not work.done():
            snapshots.append(runner.snapshot())
            await asyncio.sleep(0.002)
        await work

    asyncio.run(go())
    return runner, snapshots


def test_a_new_collection_is_created_run_and_waited_for(tmp_path: Path) -> None:
    api = FakeApi()
    runner, snapshots = apply(api, tmp_path, desired("shop"))
    (outcome,) = runner.outcomes()
    assert outcome.ok and outcome.action == "create"
    assert outcome.run is not None and outcome.run.status == "completed"
    assert outcome.run.credits == 2 and not outcome.run.adopted
    assert list(api.collections.values()) == ["shop"] and len(api.runs) == 1
    # The display saw frozen snapshots of the way there.
    states = {p.run_state for snapshot in snapshots for p in snapshot}
    assert "in_progress" in states or states == {None}
    with pytest.raises(AttributeError):
        snapshots[0][0].name = "x"  # type: ignore[misc]


def test_failed_jobs_over_max_failed_fail_the_collection_with_one_reason(tmp_path: Path) -> None:
    runner, _ = apply(FakeApi(failed_per_run=2), tmp_path, desired("shop", 3, max_failed=1))
    (outcome,) = runner.outcomes()
    assert not outcome.ok
    assert outcome.run is not None and outcome.run.bad_jobs == 2
    assert not outcome.run.within_max_failed
    assert outcome.failure_reason == "2 of 3 jobs failed or timed out"


def test_an_ambiguous_create_that_took_effect_is_adopted_not_repeated(tmp_path: Path) -> None:
    api = FakeApi(ambiguous_creates=1)
    runner, _ = apply(api, tmp_path, desired("shop"))
    (outcome,) = runner.outcomes()
    assert outcome.ok and outcome.action == "create"
    assert list(api.collections.values()) == ["shop"]  # created once


def test_the_credit_brake_refuses_runs_in_file_order(tmp_path: Path) -> None:
    api = FakeApi()
    runner, _ = apply(api, tmp_path, desired("a", 2), desired("b", 2), max_credits=3)
    a, b = runner.outcomes()
    assert a.ok and a.run is not None and a.run.status == "completed"
    assert not b.ok and b.run is not None and b.run.refused and b.run.status == "skipped"
    assert len(api.runs) == 1


def test_without_runs_only_the_collections_are_reconciled(tmp_path: Path) -> None:
    api = FakeApi()
    runner, _ = apply(api, tmp_path, desired("shop"), run=False)
    (outcome,) = runner.outcomes()
    assert outcome.ok and outcome.run is None and not api.runs
