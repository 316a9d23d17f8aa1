"""Fixtures for end-to-end tests: an emulator and a target site, both on loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.sites import Site
from tests.sites import target_site as _target_site


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A simulate-mode emulator whose runs last 0.3 s; faults can be set on `.faults`."""
    with running_emulator(mode="simulate", run_seconds=0.3) as handle:
        yield handle


@pytest.fixture(scope="session")
def target_site() -> Iterator[Site]:
    with _target_site() as site:
        yield site


@pytest.fixture
def fetch_emulator() -> Iterator[EmulatorHandle]:
    """A fetch-mode emulator with a short per-request timeout, for the /hang page; it may
    fetch loopback targets, since the test sites live there."""
    with running_emulator(mode="fetch", fetch_timeout=0.5, allow_private=True) as handle:
        yield handle
