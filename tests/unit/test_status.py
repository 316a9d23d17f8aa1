"""The pure parts of `sprunner status`: sparkline, next run, pending change, renderers."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from sprunner.jobfile.model import DesiredCollection, RunPolicy
from sprunner.output.statusview import (
    NO_DATA,
    SPARKS,
    render_table,
    render_text,
    sparkline,
    to_json,
    trend,
)
from sprunner.report.health import CollectionStatus, Due, RunSummary, due, pending_change
from sprunner.runs.verdict import Health, Verdict
from sprunner.state import Entry, RunRecord


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


NOW = _ts("2026-11-28T12:30:00")


def _run(run_id: str, success: int, total: int, *, status: str = "completed") -> RunSummary:
    failed = total - success if status == "completed" else 0
    return RunSummary(run_id, status, NOW - 60, total, success, failed, 0, success)


def test_sparkline_maps_ratios_to_blocks_and_gaps_to_dots() -> None:
    assert sparkline([0.0, 0.5, 1.0, None]) == f"{SPARKS[0]}{SPARKS[4]}{SPARKS[-1]}{NO_DATA}"
    assert sparkline([]) == ""
    assert sparkline([1.5, -1.0]) == SPARKS[-1] + SPARKS[0]  # clamped, never an IndexError


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=30))
def test_sparkline_is_one_block_per_run_and_monotonic(ratios: list[float | None]) -> None:
    line = sparkline(ratios)
    assert len(line) == len(ratios)
    known = sorted((r, SPARKS.index(c)) for r, c in zip(ratios, line, strict=True) if r is not None)
    heights = [h for _, h in known]
    assert heights == sorted(heights)  # a higher ratio never draws a lower block
    assert all(c == NO_DATA for r, c in zip(ratios, line, strict=True) if r is None)


def test_trend_is_oldest_first_and_skips_runs_in_flight() -> None:
    runs = (_run("r3", 0, 4, status="in_progress"), _run("r2", 4, 4), _run("r1", 0, 4))
    status = CollectionStatus("c", "f.yaml", "id", runs)
    assert trend(status) == SPARKS[0] + SPARKS[-1]


def test_next_run_follows_the_run_policy_in_the_words_of_plan() -> None:
    six_hourly = RunPolicy(schedule="0 */6 * * *")
    not_due = due(six_hourly, last_run_at=_ts("2026-11-28T12:00:05"), changed=False, now=NOW)
    assert not_due.at == _ts("2026-11-28T18:00:00")
    # The words of `plan` and of the report's skipped run (`runs.decision.decide`).
    assert not_due.note == "not due: schedule '0 */6 * * *' next at 2026-11-28T18:00:00Z"
    overdue = due(six_hourly, last_run_at=_ts("2026-11-28T05:00:00"), changed=False, now=NOW)
    assert overdue.at == NOW and "due since 2026-11-28T06:00:00Z" in overdue.note
    assert due(six_hourly, last_run_at=None, changed=True, now=NOW).at == NOW
    assert due(RunPolicy(), last_run_at=NOW, changed=False, now=NOW) == Due(
        NOW, "at the next apply"
    )
    never = due(RunPolicy(when="never"), last_run_at=None, changed=True, now=NOW)
    assert never == Due(None, "run.when is never")
    changed = RunPolicy(when="changed")
    assert due(changed, last_run_at=None, changed=False, now=NOW).at is None
    assert due(changed, last_run_at=None, changed=True, now=NOW).at == NOW


def test_pending_change_compares_fingerprints_for_the_same_remote_id() -> None:
    desired = DesiredCollection("c", "f.yaml", 1, (), ({"url": "https://e.com/"},))
    applied = Entry("id1", fingerprint=desired.fingerprint, last_run=RunRecord("r", NOW))
    assert pending_change(desired, applied, "id1") is False
    assert pending_change(desired, Entry("id1", fingerprint="other"), "id1") is True
    assert pending_change(desired, applied, "id2") is None  # recreated remotely: unknown
    assert pending_change(desired, None, "id1") is None  # lost state: unknown
    assert pending_change(desired, None, None) is True  # to be created


def _statuses() -> tuple[CollectionStatus, ...]:
    flight = _run("r9", 1, 4, status="in_progress")
    return (
        CollectionStatus(
            "shop",
            "a.yaml",
            "c1",
            (flight, _run("r2", 3, 4), _run("r1", 4, 4)),
            flight,
            Due(NOW, "at the next apply"),
            False,
        ),
        CollectionStatus(
            "new", "a.yaml", None, due=Due(NOW, "at the next apply"), pending_change=True
        ),
        CollectionStatus("broken", "b.yaml", "c3", error="500 | boom"),
        CollectionStatus(
            "failing",
            "b.yaml",
            "c4",
            (_run("r5", 1, 4),),
            verdict=Verdict("r5", NOW - 30, ok=False, reason="3 of 4 jobs failed or timed out"),
            health=Health(False, "last run r5 at 2026-11-28T12:29:30Z failed: 3 of 4 jobs"),
        ),
    )


def test_text_table_shows_each_collection_and_its_runs() -> None:
    text = render_text(_statuses(), with_trend=True)
    lines = text.splitlines()
    assert lines[0].split() == [
        "COLLECTION",
        "ID",
        "HEALTH",
        "LAST",
        "RUN",
        "CREDITS",
        "IN",
        "FLIGHT",
        "NEXT",
        "RUN",
        "CHANGE",
        "TREND",
    ]
    shop = next(line for line in lines if line.startswith("shop "))
    assert "c1" in shop and "r9" in shop and "in progress 1/4" in shop
    assert shop.endswith(SPARKS[-1] + SPARKS[5])  # r1 (4/4) then r2 (3/4), oldest first
    assert "create" in next(line for line in lines if line.startswith("new "))
    assert "error: 500 | boom" in text
    assert "shop: last 3 runs" in text
    assert "TREND" not in render_text(_statuses(), with_trend=False)
    failing = next(line for line in lines if line.startswith("failing "))
    assert failing.split()[2] == "FAILED"
    assert "  not healthy: last run r5 at 2026-11-28T12:29:30Z failed" in text
    assert shop.split()[2] == "-"  # no verdict recorded yet: unknown, not "ok"


def test_json_is_stable_and_complete() -> None:
    document = to_json(_statuses(), now=NOW)
    assert json.loads(json.dumps(document)) == document
    shop, new, broken, failing = document["collections"]  # type: ignore[misc]
    assert shop["health"] == {"ok": True, "reason": None, "stale": False, "verdict": None}
    assert failing["health"]["ok"] is False
    assert failing["health"]["verdict"]["run_id"] == "r5"
    assert failing["health"]["verdict"]["finished_at"] == "2026-11-28T12:29:30Z"
    assert shop["in_flight"]["run_id"] == "r9"
    assert [r["run_id"] for r in shop["runs"]] == ["r9", "r2", "r1"]
    assert shop["runs"][1]["success_ratio"] == 0.75 and shop["runs"][0]["success_ratio"] is None
    assert shop["next_run"] == {"at": "2026-11-28T12:30:00Z", "reason": "at the next apply"}
    assert new["remote_id"] is None and new["pending_change"] is True
    assert broken["error"] == "500 | boom"


def test_on_a_terminal_rich_lays_out_the_same_table_with_health_in_colour() -> None:
    plain = render_table(_statuses(), color=False)
    header, *rows = plain.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["COLLECTION", "ID", "HEALTH"] and header.endswith("TREND")
    assert "\x1b[" not in plain
    failing = next(row for row in rows if row.startswith("failing "))
    assert failing.split()[2] == "FAILED"
    # The same cells as the plain table, whatever the layout.
    assert [r.split() for r in rows] == [
        r.split() for r in render_text(_statuses(), with_trend=True).splitlines()[1:5]
    ]
    coloured = render_table(_statuses(), color=True)
    assert "\x1b[1;31mFAILED" in coloured  # bold red
