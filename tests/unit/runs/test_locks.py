"""Per-collection locks in the runner, on a real PostgreSQL state (the `state_db` fixture)
and the in-memory fake of the API: two applies planned from the same listing never create
or run a collection twice, and the one that comes second says who handled it."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from sprunner.api.client import ApiClient
from sprunner.api.models import WriteResult
from sprunner.apply.runner import Runner
from sprunner.output.ui import HumanOutput
from sprunner.reconcile.plan import Plan, build_plan
from sprunner.report.outcome import CollectionOutcome
from sprunner.runs.locks import HANDLED
from sprunner.state import State, StateStore
from sprunner.state.postgres import PostgresState
from tests.unit.test_runner import FAST, FakeApi, desired

API = "https://api.example"


class Api(FakeApi):
    """The fake API, with PUT (an adopted collection's content is not known to be ours)."""

    async def update_collection(
        self, collection_id: str, name: str, requests: Sequence[Mapping[str, Any]]
    ) -> WriteResult:
        self.sizes[collection_id] = len(requests)
        return WriteResult(collection_id, name)


def connect(url: str) -> PostgresState:
    return PostgresState.connect(url, API, key="test-key")


def plan_for(state: StateStore, api: FakeApi, *names: str) -> Plan:
    collections = [desired(n) for n in names]
    remote = asyncio.run(api.list_collections())
    return build_plan(
        collections, remote, state.entries(), hasher=state.hasher, declared=list(names)
    )


def execute(state: StateStore, api: FakeApi, plan: Plan, apply_id: str) -> Runner:
    output = HumanOutput(stdout=io.StringIO(), stderr=io.StringIO())
    runner = Runner(
        cast(ApiClient, api),
        state,
        plan,
        output=output,
        apply_id=apply_id,
        clock=lambda: 1000.0,
        backoff=FAST,
    )
    asyncio.run(runner.execute())
    return runner


def by_name(runner: Runner) -> dict[str, CollectionOutcome]:
    return {o.name: o for o in runner.outcomes()}


def test_an_apply_planned_before_another_did_the_work_neither_creates_nor_runs_again(
    state_db: str,
) -> None:
    api = Api()
    first, second = connect(state_db), connect(state_db)
    try:
        # Both list and plan before either acts: both plans say "create".
        plan_1, plan_2 = plan_for(first, api, "shop"), plan_for(second, api, "shop")
        assert plan_2.items[0].action == "create"
        done = by_name(execute(first, api, plan_1, "one"))["shop"]
        assert done.ok and done.action == "create" and done.run is not None

        late = by_name(execute(second, api, plan_2, "two"))["shop"]
    finally:
        first.close()
        second.close()
    assert list(api.collections.values()) == ["shop"] and len(api.runs) == 1
    assert late.ok and late.action == "skip"
    assert late.run is not None and late.run.status == "skipped"
    assert late.run.reason == f"handled by apply one on {socket.gethostname()}"


def test_a_collection_whose_lock_another_apply_holds_is_skipped_not_failed(
    state_db: str,
) -> None:
    api = Api()
    holder, apply = connect(state_db), connect(state_db)
    try:
        assert holder.try_lock("shop", apply_id="busy")
        runner = execute(apply, api, plan_for(apply, api, "shop", "blog"), "two")
    finally:
        holder.close()
        apply.close()
    outcomes = by_name(runner)
    shop, blog = outcomes["shop"], outcomes["blog"]
    assert shop.ok and shop.action == "skip" and shop.run is not None
    assert shop.run.reason == f"handled by apply busy on {socket.gethostname()}"
    assert blog.ok and blog.action == "create"  # the others are done as usual
    assert list(api.collections.values()) == ["blog"]


def test_a_create_confirmed_by_an_apply_that_died_is_adopted_not_created_again(
    state_db: str,
) -> None:
    api = Api()
    died, late = connect(state_db), connect(state_db)
    try:
        plan = plan_for(late, api, "shop")  # listed before the other apply created it
        collection_id = asyncio.run(api.create_collection("shop", [{}, {}], idempotency_key="k"))
        died.update("shop", id=collection_id.id, created=True)
        died.close()  # killed before its run and before its "handled" mark
        outcome = by_name(execute(late, api, plan, "two"))["shop"]
        entry = late.get("shop")
        mark = late.get_blob("shop", HANDLED)
    finally:
        late.close()
    assert list(api.collections.values()) == ["shop"]
    assert outcome.ok and outcome.action == "update" and outcome.collection_id == "c1"
    assert len(api.runs) == 1  # its run was never started: this apply starts it, once
    assert entry is not None and entry.created  # still known as one sprunner created
    assert mark is not None and mark["apply_id"] == "two"


def test_the_state_directory_takes_no_collection_lock_and_marks_nothing(tmp_path: Path) -> None:
    api = Api()
    state = State(tmp_path / "state", API, key="test-key")
    runner = execute(state, api, plan_for(state, api, "shop"), "one")
    (outcome,) = runner.outcomes()
    assert outcome.ok and outcome.action == "create"
    assert state.get_blob("shop", HANDLED) is None
