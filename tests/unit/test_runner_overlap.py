"""The overlapped apply: collections do not wait for each other's phases, and the credit
brake still decides in file order whatever the order in which the answers come."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sprunner.api.models import Run, WriteResult
from tests.unit.test_runner import FakeApi, apply, desired


class SlowCreates(FakeApi):
    """Creates of the collections named in `slow` answer after 50 ms; records the order."""

    def __init__(self, slow: set[str]) -> None:
        super().__init__()
        self.slow = slow
        self.events: list[str] = []

    async def create_collection(
        self, name: str, requests: Sequence[Mapping[str, Any]], *, idempotency_key: str
    ) -> WriteResult:
        if name in self.slow:
            await asyncio.sleep(0.05)
        self.events.append(f"created {name}")
        return await super().create_collection(name, requests, idempotency_key=idempotency_key)

    async def start_run(self, collection_id: str, *, name: str | None = None) -> Run:
        self.events.append(f"started {self.collections[collection_id]}")
        return await super().start_run(collection_id, name=name)


def test_a_collection_that_surely_fits_starts_before_an_earlier_one_is_created(
    tmp_path: Path,
) -> None:
    api = SlowCreates({"a"})
    runner, _ = apply(api, tmp_path, desired("a", 2), desired("b", 1), max_credits=10)
    assert all(outcome.ok for outcome in runner.outcomes())
    assert api.events.index("started b") < api.events.index("created a")


def test_the_brake_keeps_file_order_when_earlier_collections_answer_last(
    tmp_path: Path,
) -> None:
    # a (2 credits) answers last; b (2) would fit if it went first, but file order says a.
    api = SlowCreates({"a"})
    collections = (desired("a", 2), desired("b", 2), desired("c", 1))
    runner, _ = apply(api, tmp_path, *collections, max_credits=3)
    a, b, c = runner.outcomes()
    assert a.ok and a.run is not None and a.run.status == "completed"
    assert b.run is not None and b.run.refused and not b.ok
    assert c.ok and c.run is not None and c.run.status == "completed"
    # b and c were created long before a, yet neither started before a's decision.
    assert api.events.index("created b") < api.events.index("created a")
    assert api.events.index("started c") > api.events.index("created a")
