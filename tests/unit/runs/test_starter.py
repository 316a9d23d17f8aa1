"""Which listed run an ambiguous start (or a pending one) adopts as its own."""

from __future__ import annotations

from sprunner.api.models import Run
from sprunner.runs.starter import CLOCK_SKEW_SECONDS, _ours


def run(run_id: str, created_at: float | None) -> Run:
    return Run(run_id, "c", "completed", 1, 1, 0, 0, created_at=created_at)


def test_the_newest_run_since_the_attempt_is_ours() -> None:
    runs = [run("new", 100.0), run("old", 50.0)]
    assert _ours(runs, since=99.0, known={"old"}) == runs[0]


def test_a_recent_run_older_than_a_known_one_is_not_ours() -> None:
    # Two applies a second apart: the one before last is recent, but older than the last.
    runs = [run("last", 99.0), run("before-last", 98.5)]
    assert _ours(runs, since=100.0, known={"last"}) is None


def test_runs_before_the_attempt_less_the_skew_margin_are_not_ours() -> None:
    assert _ours([run("r", 100.0 - CLOCK_SKEW_SECONDS - 1)], since=100.0, known=()) is None
    assert _ours([run("r", None)], since=100.0, known=()) is None
    assert _ours([run("r", 100.0 - CLOCK_SKEW_SECONDS + 1)], since=100.0, known=()) is not None
