from __future__ import annotations

from datetime import datetime, timezone

from sprunner.jobfile.model import RunPolicy
from sprunner.runs.decision import apply_budget, decide, next_due


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_when_never_and_changed() -> None:
    assert decide(RunPolicy(when="never"), changed=True, last_run_at=None, now=0).decision == "skip"
    changed = RunPolicy(when="changed")
    assert decide(changed, changed=False, last_run_at=None, now=0).decision == "skip"
    assert decide(changed, changed=True, last_run_at=None, now=0).decision == "run"
    assert decide(RunPolicy(), changed=False, last_run_at=None, now=0).decision == "run"


def test_schedule_runs_when_a_slot_has_passed_since_the_last_run() -> None:
    policy = RunPolicy(schedule="0 */6 * * *")
    last = epoch("2026-11-28T06:30:00")
    not_yet = decide(policy, changed=False, last_run_at=last, now=epoch("2026-11-28T11:59:00"))
    assert not_yet.decision == "skip"
    assert "2026-11-28T12:00:00Z" in not_yet.reason
    due = decide(policy, changed=False, last_run_at=last, now=epoch("2026-11-28T12:00:01"))
    assert due.decision == "run"
    # Never run before: due now.
    assert decide(policy, changed=False, last_run_at=None, now=0).decision == "run"


def test_next_due_is_utc() -> None:
    assert next_due("30 2 * * *", epoch("2026-11-28T03:00:00")) == epoch("2026-11-29T02:30:00")


def test_budget_refuses_in_order_and_lets_cheaper_runs_fit() -> None:
    decisions = apply_budget([("a", 5), ("b", 10), ("c", 3)], 9)
    assert [decisions[n].decision for n in "abc"] == ["run", "skip", "run"]
    assert decisions["b"].refused and "only 4 of --max-credits 9" in decisions["b"].reason
    assert all(d.decision == "run" for d in apply_budget([("a", 5)], None).values())
