"""The never-twice rules of execute.py, against the emulator over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sprunner.api.client import ApiClient
from sprunner.api.errors import AmbiguousApiError
from sprunner.emulator.server import running_emulator
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile import execute
from sprunner.state import Entry, State
from sprunner.util.backoff import Backoff

FAST = Backoff(base=0.001, cap=0.01, attempts=4)
SHOP = DesiredCollection(
    name="shop", file="jobs.yaml", line=1, tags=(), requests=({"url": "https://a.example/"},)
)


def test_a_create_is_marked_pending_before_it_is_sent(tmp_path: Path) -> None:
    with running_emulator(faults=["error-before:1@create"]) as emulator:
        state = State(tmp_path, emulator.url, key=emulator.api_key)

        async def go() -> None:
            async with ApiClient(base_url=emulator.url, api_key=emulator.api_key) as client:
                await execute.create(client, state, SHOP, apply_id="a", backoff=FAST)

        with pytest.raises(AmbiguousApiError):
            asyncio.run(go())
    # As after a kill between the POST and its answer: the journal says a create was sent.
    assert State(tmp_path, emulator.url, key=emulator.api_key).get("shop") == Entry(
        id="", creating=True, file=SHOP.file
    )


def test_a_collection_found_after_a_pending_create_counts_as_created(tmp_path: Path) -> None:
    with running_emulator() as emulator:
        remote = emulator.engine.create_collection({"name": "shop", "requests": []})
        state = State(tmp_path, emulator.url, key=emulator.api_key)
        state.update("shop", id="", creating=True)

        async def go() -> execute.Applied:
            async with ApiClient(base_url=emulator.url, api_key=emulator.api_key) as client:
                return await execute.update(client, state, SHOP, remote["id"], apply_id="a")

        applied = asyncio.run(go())
    entry = state.get("shop")
    assert applied.action == "update" and entry is not None
    assert (entry.id, entry.created, entry.creating) == (remote["id"], True, False)
    assert entry.fingerprint == state.fingerprint_of(SHOP)


def test_someone_elses_collection_is_never_marked_created(tmp_path: Path) -> None:
    with running_emulator() as emulator:
        remote = emulator.engine.create_collection({"name": "shop", "requests": []})
        state = State(tmp_path, emulator.url, key=emulator.api_key)

        async def go() -> None:
            async with ApiClient(base_url=emulator.url, api_key=emulator.api_key) as client:
                await execute.update(client, state, SHOP, remote["id"], apply_id="a")

        asyncio.run(go())
    entry = state.get("shop")
    assert entry is not None and not entry.created
