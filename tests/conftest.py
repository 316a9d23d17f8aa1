"""Shared test set-up: no test sees the developer's key, state or API URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("SCRAPINGPROS_", "SPRUNNER_")) or name == "NO_COLOR":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPRUNNER_STATE_DIR", str(tmp_path / "state"))
    yield
