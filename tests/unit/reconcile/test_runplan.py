"""Whether apply would start a run: `intend` with plain values, in the runner's order."""

from __future__ import annotations

from sprunner.jobfile.model import DesiredCollection, RunPolicy
from sprunner.reconcile.plan import PlannedCollection
from sprunner.reconcile.runplan import RemoteRuns, intend, needs_remote
from sprunner.state import Entry, RunRecord

NOW = 1_800_001_800.0  # 2027-01-15T08:30:00Z


def item(action: str = "unchanged", **policy: object) -> PlannedCollection:
    desired = DesiredCollection(
        name="c",
        file="j.yaml",
        line=1,
        tags=(),
        requests=({"url": "https://a.example/"}, {"url": "https://b.example/", "browser": True}),
        run=RunPolicy(**policy),  # type: ignore[arg-type]
    )
    return PlannedCollection("c", action, "", desired, None if action == "create" else "id1")  # type: ignore[arg-type]


def entry(last: float | None = None, inflight: bool = False) -> Entry:
    return Entry(
        id="id1",
        last_run=RunRecord("r0", last) if last is not None else None,
        inflight=RunRecord("r1", NOW - 5) if inflight else None,
    )


def test_a_run_starts_with_its_cost_when_nothing_stops_it() -> None:
    intent = intend(item(), entry(), changed=False, remote=RemoteRuns(None, None), now=NOW)
    assert (intent.start, intent.reason, intent.credits) == (True, None, 6)


def test_reasons_in_the_runners_order() -> None:
    never = intend(item(when="never"), entry(), changed=True, remote=None, now=NOW)
    assert (never.start, never.reason, never.credits) == (False, "run.when is never", 0)
    same = intend(item(when="changed"), entry(), changed=False, remote=None, now=NOW)
    assert not same.start and "nothing changed" in str(same.reason)
    hourly = item(schedule="0 * * * *")
    due_later = intend(hourly, entry(last=NOW - 60), changed=False, remote=None, now=NOW)
    assert not due_later.start and "not due" in str(due_later.reason)
    busy = intend(item(), entry(), changed=False, remote=RemoteRuns(NOW, "r9"), now=NOW)
    assert not busy.start and "r9" in str(busy.reason)
    allow = intend(
        item(overlap="allow"), entry(), changed=False, remote=RemoteRuns(NOW, "r9"), now=NOW
    )
    assert allow.start
    left = intend(item(when="never"), entry(inflight=True), changed=False, remote=None, now=NOW)
    assert not left.start and "interrupted apply" in str(left.reason)


def test_the_last_run_time_comes_from_the_api_when_the_state_has_none() -> None:
    hourly = item(schedule="0 * * * *")
    remote = RemoteRuns(NOW - 60, None)
    assert needs_remote(hourly, entry(), changed=False, now=NOW)
    assert not intend(hourly, entry(), changed=False, remote=remote, now=NOW).start
    assert intend(
        hourly, entry(), changed=False, remote=RemoteRuns(NOW - 7200, None), now=NOW
    ).start


def test_no_call_for_what_cannot_run_or_is_new() -> None:
    assert not needs_remote(item(when="never"), entry(), changed=False, now=NOW)
    assert not needs_remote(item(when="changed"), entry(), changed=False, now=NOW)
    assert not needs_remote(item("create"), None, changed=True, now=NOW)
    assert not needs_remote(item(overlap="allow"), entry(), changed=False, now=NOW)
    assert needs_remote(item(), entry(), changed=False, now=NOW)  # overlap: skip by default
    created = intend(item("create"), None, changed=True, remote=None, now=NOW)
    assert created.start and created.credits == 6
