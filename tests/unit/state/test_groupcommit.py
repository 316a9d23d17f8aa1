"""Group commit of the state journal: records made together share one fsync, and every
durable record is on the disk before `synced()` returns (before the POST relying on it)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sprunner.state import groupcommit
from sprunner.state.directory import State

KEY = "sk-test-key"


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every fsync made (the real one still runs), by the module that asked for it."""
    made: list[str] = []
    real_os = os.fsync

    def group(path: Path) -> None:
        made.append("group")
        descriptor = os.open(path, os.O_RDONLY)
        try:
            real_os(descriptor)
        finally:
            os.close(descriptor)

    def single(descriptor: int) -> None:
        made.append("single")
        real_os(descriptor)

    monkeypatch.setattr(groupcommit, "fsync_file", group)
    monkeypatch.setattr(os, "fsync", single)
    return made


def test_records_made_in_one_tick_share_one_fsync(tmp_path: Path, fsyncs: list[str]) -> None:
    state = State(tmp_path, "https://api", key=KEY)

    async def collection(name: str) -> None:
        state.update(name, id=f"id-{name}", creating=True)  # durable, relied on by the POST
        await state.synced()

    async def apply() -> None:
        state.defer_durability(True)
        try:
            await asyncio.gather(*(collection(f"c{i}") for i in range(50)))
        finally:
            state.defer_durability(False)

    asyncio.run(apply())
    assert fsyncs == ["group"]
    # Every record is in the journal, read back by a fresh open.
    assert {f"c{i}" for i in range(50)} <= set(State(tmp_path, "https://api", key=KEY).entries())


def test_a_record_written_during_an_fsync_waits_for_the_next(
    tmp_path: Path, fsyncs: list[str]
) -> None:
    state = State(tmp_path, "https://api", key=KEY)

    async def apply() -> None:
        state.defer_durability(True)
        state.update("first", id="1")
        running = asyncio.ensure_future(state.synced())
        for _ in range(2):  # one step asks for the fsync, the next begins it
            await asyncio.sleep(0)
        state.update("second", id="2")
        await state.synced()
        await running
        assert fsyncs == ["group", "group"]
        state.defer_durability(False)  # nothing pending: no fsync more

    asyncio.run(apply())
    assert fsyncs == ["group", "group"]


def test_pending_records_are_fsynced_when_group_commit_ends(
    tmp_path: Path, fsyncs: list[str]
) -> None:
    state = State(tmp_path, "https://api", key=KEY)
    state.defer_durability(True)
    state.update("a", id="1")
    state.update("b", id="2")
    assert fsyncs == []
    state.defer_durability(False)  # an interrupted apply ends here too
    assert fsyncs == ["group"]
    state.update("c", id="3")  # outside an apply: durable on return, as before
    assert fsyncs == ["group", "single"]


def test_changes_that_forget_are_not_waited_for(tmp_path: Path, fsyncs: list[str]) -> None:
    state = State(tmp_path, "https://api", key=KEY)

    async def apply() -> None:
        state.defer_durability(True)
        state.update("a", id="1", durable=False)
        await state.synced()
        state.defer_durability(False)

    asyncio.run(apply())
    assert fsyncs == []
