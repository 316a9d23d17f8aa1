"""Shared test set-up: no test sees the developer's key, state or API URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.postgres import PostgresServer, postgres_server

# The suite is deterministic: each property test draws the same examples on every run, so
# CI passes or fails on the code, not on the draw. Exploring new examples is a separate,
# deliberate run: HYPOTHESIS_PROFILE=explore (tests/stress/ and bench/README.md say how).
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

_COLOR_VARIABLES = {"NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "CLICOLOR", "TERM"}
# The slowest tests, which mostly wait on builds (the image: about a minute; the sdist),
# go first: under xdist they then run beside the rest instead of after it.
_FIRST = ("tests/e2e/test_image.py::", "::test_the_sdist_carries_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(part in item.nodeid for part in _FIRST))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        # The colour conventions too (`ui.color_mode`): the runner's terminal decides nothing.
        if name.startswith(("SCRAPINGPROS_", "SPRUNNER_")) or name in _COLOR_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPRUNNER_STATE_DIR", str(tmp_path / "state"))
    yield


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on loopback for this test session (`tests/postgres.py`)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def state_db(postgres: PostgresServer) -> str:
    """The URL of a fresh, empty database on that server."""
    return postgres.create_database()
