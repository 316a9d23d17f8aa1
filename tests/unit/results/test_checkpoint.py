"""Checkpoints survive the journal's JSON; times are compared as instants, not strings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sprunner.results.checkpoint import DrainCheckpoint, before, parse_time


def test_a_checkpoint_round_trips_through_json() -> None:
    checkpoint = DrainCheckpoint(
        run_id="r", data="s3://b/collection=x/date=2026-11-28/r.jsonl.gz",
        manifest="s3://b/collection=x/date=2026-11-28/r.manifest.json", format="jsonl.gz",
        to="s3://b", started_at="2026-11-28T12:00:00.000000Z", high_water="2026-11-28T12:00:01Z",
        ids_at_mark=("a", "b"), lines=10, bytes=1234, seen_finished=12,
    )  # fmt: skip
    assert DrainCheckpoint.from_json(checkpoint.to_json()) == checkpoint
    assert checkpoint.paths.directory == "s3://b/collection=x/date=2026-11-28"


@pytest.mark.parametrize(
    "data",
    [{}, {"version": 1, "format": "csv"}, {"version": 1, "format": "jsonl", "run_id": "r"}],
)
def test_a_foreign_checkpoint_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DrainCheckpoint.from_json(data)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T12:00:01.5Z",
        "2026-11-28T12:00:01.500Z",
        "2026-11-28T12:00:01.500000+00:00",
        "2026-11-28T13:00:01.5+01:00",
        "2026-11-28T12:00:01.5000001",
    ],
)
def test_times_in_any_iso_spelling_are_the_same_instant(text: str) -> None:
    assert parse_time(text) == parse_time("2026-11-28T12:00:01.500Z")


def test_the_since_boundary_is_just_before_the_mark() -> None:
    mark = "2026-11-28T12:00:01.005Z"
    assert parse_time(mark) - parse_time(before(mark, timedelta(milliseconds=1))) == timedelta(
        milliseconds=1
    )
