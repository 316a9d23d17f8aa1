"""Which listed run an ambiguous start (or a pending one) adopts as its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sprunner.api.client import ApiClient
from sprunner.api.models import Run
from sprunner.emulator.server import running_emulator
from sprunner.runs import start as starter
from sprunner.runs.start import _ours
from sprunner.state import State
from sprunner.util.backoff import Backoff

FAST = Backoff(base=0.001, cap=0.01, attempts=4)


def run(run_id: str, created_at: float | None) -> Run:
    return Run(run_id, "c", "completed", 1, 1, 0, 0, created_at=created_at)


def test_the_newest_run_newer_than_every_known_one_is_ours() -> None:
    runs = [run("new", 100.0), run("old", 50.0)]
    assert _ours(runs, known={"old"}) == runs[0]


def test_a_recent_run_older_than_a_known_one_is_not_ours() -> None:
    # Two applies a second apart: the one before last is recent, but older than the last.
    runs = [run("last", 99.0), run("before-last", 98.5)]
    assert _ours(runs, known={"last"}) is None


def test_times_are_never_compared_only_the_known_runs() -> None:
    # The API's clock is far behind ours, or gives no time at all: the ids decide.
    assert _ours([run("r", 1.0)], known=()) is not None
    assert _ours([run("r", None)], known=()) is not None
    assert _ours([], known=()) is None


def test_with_a_lost_state_an_older_run_is_never_taken_for_ours(tmp_path: Path) -> None:
    with running_emulator(run_seconds=0.01) as emulator:
        collection = emulator.engine.create_collection(
            {"name": "shop", "requests": [{"url": "https://a.example/"}]}
        )
        old = emulator.engine.start_run(collection["id"])  # a second ago, say
        state = State(tmp_path, emulator.url)
        state.update("shop", id=collection["id"])  # the state knows no run of it
        # The next start fails before doing anything, in a way that looks ambiguous.
        emulator.faults.once("error-before", route="run")

        async def go() -> starter.Started:
            async with ApiClient(base_url=emulator.url, api_key=emulator.api_key) as client:
                return await starter.start(
                    client, state, name="shop", collection_id=collection["id"], backoff=FAST
                )

        started = asyncio.run(go())
        runs = [r for r in emulator.engine.runs.values() if r.collection_id == collection["id"]]
    assert started.run.run_id != old["run_id"] and not started.adopted
    assert len(runs) == 2
