"""Run policies."""

from __future__ import annotations

from typing import Any

import pytest

from sprunner.errors import Problem
from sprunner.jobfile.model import MaxFailed, RunPolicy
from sprunner.jobfile.policy import parse_duration, parse_max_failed, parse_policy


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1.5s", 1.5),
     ("1h0m5s", 3605.0), (12, 12.0), (0.5, 0.5)],
)  # fmt: skip
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m", "1d", "30m1h", True])
def test_bad_durations(text: Any) -> None:
    assert parse_duration(text) is None


def test_max_failed() -> None:
    assert parse_max_failed(3) == MaxFailed(count=3)
    assert parse_max_failed("2%") == MaxFailed(count=None, percent=2.0)
    assert parse_max_failed("100%") == MaxFailed(count=None, percent=100.0)
    assert parse_max_failed("101%") is None
    assert parse_max_failed(-1) is None
    assert parse_max_failed(True) is None


def _report(key: str, message: str) -> Problem:
    return Problem("f.yaml", 1, 1, f"run.{key}", message)


def test_policy() -> None:
    policy, problems = parse_policy(
        {"when": "changed", "schedule": "0 */6 * * *", "timeout": "30m", "poll_interval": "2s",
         "max_failed": "2%", "overlap": "allow"},
        _report,
    )  # fmt: skip
    assert problems == []
    assert policy == RunPolicy(
        when="changed",
        schedule="0 */6 * * *",
        timeout=1800.0,
        poll_interval=2.0,
        max_failed=MaxFailed(count=None, percent=2.0),
        overlap="allow",
    )


def test_default_policy() -> None:
    assert parse_policy(None, _report) == (RunPolicy(), [])


def test_policy_problems() -> None:
    _, problems = parse_policy(
        {"schedule": "61 * * * *", "timeout": "0s", "max_failed": "150%"}, _report
    )
    assert [p.path for p in problems] == ["run.timeout", "run.max_failed", "run.schedule"]
