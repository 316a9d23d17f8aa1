"""JUnit test cases carry the time they took, also when they errored or were interrupted
(a real apply against the emulator; the unit tests in tests/unit/test_junit.py hold the rule)."""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.subprocess_helpers import Apply

JOB = """\
version: 1
collections:
  - name: lasting
    requests:
      - url: https://shop.example.com/a
    run:
      poll_interval: 0.1s
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=60) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def _times(junit: Path) -> dict[str, float]:
    root = ET.parse(junit).getroot()
    return {case.get("name", ""): float(case.get("time", "")) for case in root.iter("testcase")}


def test_an_errored_case_carries_the_time_up_to_its_error(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    # Every run start is refused: retried with backoff, then the collection errors.
    sprunner.emulator.faults.add("error-before@run")
    junit = tmp_path / "junit.xml"
    result, report = sprunner.apply(write_job(tmp_path, JOB), "--junit", str(junit))
    assert result.exit_code == 1, result.output
    (collection,) = report["collections"]
    assert collection["ok"] is False and collection["error"]
    root = ET.parse(junit).getroot()
    assert root.find("./testsuite/testcase/error") is not None
    took = _times(junit)["lasting"]
    assert 0.0 < took <= float(root.get("time", "0"))


def test_an_interrupted_case_carries_the_time_its_run_went_on(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    apply = Apply(sprunner, write_job(tmp_path, JOB), "--junit", str(junit))
    apply.wait_until(lambda: sprunner.emulator.engine.calls["get_run"] >= 2, "two polls")
    assert apply.stop(signal.SIGTERM) == 143, apply.output
    root = ET.parse(junit).getroot()
    assert root.find("./testsuite/testcase/failure[@type='interrupted']") is not None
    took = _times(junit)["lasting"]
    assert 0.1 <= took <= float(root.get("time", "0"))  # two polls 0.1 s apart, at least
