"""Hostile answers from the API: a clear error for that collection, never a traceback or a hang.

The emulator sits behind `tests/e2e/hostile.py`, which answers chosen calls with bodies no
real deployment should send: not JSON, the wrong shape, fields missing, a run status nobody
documented, 20 MB of junk, no answer at all, or a collection deleted by someone else in the
middle of an apply. For each:

- the collection concerned carries an error that names the call (exit 1) and the others
  are applied and run as usual; when the very first call (the list) is unusable nothing can
  be reconciled, so the exit code is 3 and nothing else is sent;
- no Python traceback reaches the user;
- the apply ends within a bound; a watchdog (`faulthandler`) kills a hung test run with
  every thread's stack rather than letting CI hang.
"""

from __future__ import annotations

import faulthandler
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, check_report, write_job
from tests.e2e.hostile import CID, HANG, PREFIX, RID, Answer, Call, Hostile, Rule, json_answer

WATCHDOG_SECONDS = 120.0  # a hung test dies with a stack dump instead of hanging CI
APPLY_BOUND_SECONDS = 15.0  # every apply here ends well within this

JOBS = """
version: 1
collections:
  - name: victim
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/fail
    run: {poll_interval: 0.1s, timeout: 3s, max_failed: 1}
  - name: bystander
    requests:
      - url: https://blog.example.com/
    run: {poll_interval: 0.1s, timeout: 3s}
"""
HUGE = 20 * 1024 * 1024


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Env:
    """An emulator behind a `Hostile`, and `sprunner` pointed at it."""

    def __init__(self, handle: EmulatorHandle, hostile: Hostile, tmp_path: Path) -> None:
        self.emulator = handle
        self.engine = handle.engine
        self.hostile = hostile
        self.sprunner = Sprunner(handle, tmp_path / "state", tmp_path, QUICK_RETRIES)
        self.job = write_job(tmp_path, JOBS)
        self.report_path = tmp_path / "report.json"

    def rule(self, method: str, path: str, answer: Callable[[Call], Any], **kw: Any) -> Rule:
        rule = Rule(method, PREFIX + path, answer, **kw)
        self.hostile.rules.append(rule)
        return rule

    def is_victim(self, call: Call) -> bool:
        """The call is about the collection named `victim` (by its id in the path, or body)."""
        if "cid" in call.match.groupdict():
            stored = self.engine.collections.get(call["cid"])
            return stored is not None and stored.name == "victim"
        return b'"name":"victim"' in call.body.replace(b" ", b"")

    def apply(self, *args: str) -> tuple[Result, dict[str, Any] | None]:
        self.report_path.unlink(missing_ok=True)
        started = time.monotonic()
        result = self.sprunner("apply", str(self.job), "--report", str(self.report_path), *args)
        elapsed = time.monotonic() - started
        assert elapsed < APPLY_BOUND_SECONDS, f"apply took {elapsed:.1f}s"
        assert "Traceback" not in result.output, result.output
        report = check_report(self.report_path) if self.report_path.exists() else None
        return result, report

    def remote_names(self) -> list[str]:
        return sorted(c.name for c in self.engine.collections.values())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    hostile = Hostile()
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=hostile.wrap) as handle:
        yield Env(handle, hostile, tmp_path)


def victim_failed(result: Result, report: dict[str, Any] | None, *needles: str) -> str:
    """The victim failed with an error naming what went wrong; the bystander was fine."""
    assert result.exit_code == 1, result.output
    assert report is not None and report["ok"] is False
    by_name = {c["name"]: c for c in report["collections"]}
    victim, bystander = by_name["victim"], by_name["bystander"]
    assert victim["ok"] is False
    error = victim.get("error") or ""
    for needle in needles:
        assert needle in error, error
    assert f"victim: {error}" in result.output or error in result.output
    assert bystander["ok"] is True and bystander["run"]["status"] == "completed"
    return str(error)


# -- the first call: nothing can be reconciled --------------------------------------------
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<html>502 Bad Gateway</html>", "answer is not JSON"),
        (b'{"items": []}', "answer is not a list"),
        (b'[{"id": "c1"}]', "answer[0] has no 'name'"),
        (b'[{"name": "x", "id": null}]', "answer[0].id is not a string"),
        (b"null", "answer is not a list"),
    ],
    ids=["html", "object", "no-name", "null-id", "null"],
)
def test_an_unusable_first_list_exits_3_and_sends_nothing_else(
    env: Env, body: bytes, needle: str
) -> None:
    env.rule("GET", "", lambda _: Answer(200, body))
    result, report = env.apply()
    assert result.exit_code == 3, result.output
    assert needle in result.output and "list collections" in result.output
    # A fresh report says so (SPEC §3: written on every exit but 4), with nothing applied.
    assert report is not None and report["ok"] is False and report["exit_code"] == 3
    assert report["collections"] == [] and "list collections" in report["error"]
    assert env.sprunner.calls() == {}  # the hostile layer answered; the emulator saw nothing


# -- create --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"Created!", "answer is not JSON"),
        (b'{"name": "victim"}', "answer has no 'id'"),
        (b'{"id": "x", "name": 7}', "answer.name is not a string"),
        (b"[]", "answer is not an object"),
    ],
    ids=["text", "no-id", "name-not-str", "list"],
)
def test_a_broken_create_answer_fails_that_collection_and_the_next_apply_adopts_it(
    env: Env, body: bytes, needle: str
) -> None:
    # The emulator creates the collection; the answer that should carry its id is broken.
    env.rule("POST", "", lambda _: Answer(201, body), after=True, when=env.is_victim)
    result, report = env.apply()
    victim_failed(result, report, "create collection", needle)
    env.hostile.rules.clear()
    result, report = env.apply("--no-run")
    assert result.exit_code == 0, result.output
    assert report is not None
    assert {c["name"]: c["action"] for c in report["collections"]} == {
        "victim": "updated",  # found by name, content unknown: PUT, never a second create
        "bystander": "unchanged",
    }
    assert env.remote_names() == ["bystander", "victim"]


@pytest.mark.parametrize("junk", [b"x" * HUGE, b"[" * 5000], ids=["20MB", "nested"])
def test_a_huge_error_body_is_cut_short(env: Env, junk: bytes) -> None:
    env.rule("POST", "", lambda _: Answer(422, junk, "text/plain"), when=env.is_victim)
    result, report = env.apply()
    error = victim_failed(result, report, "create collection", "[HTTP 422]", "more characters")
    assert len(error) < 1000 and len(result.output) < 10_000


# -- runs ----------------------------------------------------------------------------------
RUN_OK = {
    "run_id": "r1",
    "status": "completed",
    "total_requests": 2,
    "success_requests": 1,
    "failed_requests": 1,
    "timeout_requests": 0,
}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in RUN_OK.items() if k != key}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (json.dumps({**RUN_OK, "status": "exploded"}), "answer.status is 'exploded'"),
        (json.dumps(_without("total_requests")), "answer has no 'total_requests'"),
        (json.dumps(_without("status")), "answer has no 'status'"),
        (
            json.dumps({**RUN_OK, "failed_requests": "1"}),
            "answer.failed_requests is not an integer",
        ),
        (json.dumps({**RUN_OK, "failed_jobs": {"a": 1}}), "answer.failed_jobs is not a list"),
        (json.dumps({**RUN_OK, "failed_jobs": [{"url": 1}]}), "failed_jobs[0] has no 'job_id'"),
        (json.dumps({**RUN_OK, "run_id": None}), "answer.run_id is not a string"),
        ("<html>oops</html>", "answer is not JSON"),
        (json.dumps({**RUN_OK, "failed_jobs": [[[[[[[[]]]]]]]]}), "failed_jobs[0] is not an"),
        (
            json.dumps(RUN_OK)[:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}",
            "answer is not JSON",  # nested deeper than Python will parse: not usable
        ),
    ],
    ids=[
        *("status", "no-total", "no-status", "count-str", "jobs-obj", "job-shape", "no-id"),
        *("html", "jobs-nested", "deep-extra"),
    ],
)
def test_a_broken_run_answer_fails_that_collection(env: Env, body: str, needle: str) -> None:
    env.rule("GET", f"/{CID}/runs/{RID}", lambda _: json_answer(200, body), when=env.is_victim)
    result, report = env.apply()
    victim_failed(result, report, "get run", needle)
    assert report is not None
    run = next(c for c in report["collections"] if c["name"] == "victim")["run"]
    assert run["status"] == "error"


def test_a_broken_run_start_answer_fails_that_collection_and_is_adopted_next(env: Env) -> None:
    env.rule(
        "POST",
        f"/{CID}/run",
        lambda _: json_answer(201, '{"run_id": "r", "status": "queued"}'),
        after=True,
        when=env.is_victim,
    )
    result, report = env.apply()
    victim_failed(result, report, "start run", "answer.status is 'queued'")
    started = [
        r
        for r in env.engine.runs.values()
        if env.engine.collections[r.collection_id].name == "victim"
    ]
    assert len(started) == 1
    env.hostile.rules.clear()
    result, report = env.apply()
    assert result.exit_code == 0, result.output
    assert report is not None
    run = next(c for c in report["collections"] if c["name"] == "victim")["run"]
    # The start the broken answer hid is recorded as pending: it is adopted, not repeated.
    assert (run["run_id"], run["adopted"]) == (started[0].run_id, True)


def test_a_huge_run_answer_fails_that_collection(env: Env) -> None:
    junk = b"[" * HUGE
    env.rule("GET", f"/{CID}/runs/{RID}", lambda _: Answer(200, junk), when=env.is_victim)
    result, report = env.apply()
    error = victim_failed(result, report, "get run", "answer is not JSON")
    assert len(error) < 1000 and len(result.output) < 10_000


def test_a_broken_run_list_fails_that_collection(env: Env) -> None:
    env.apply("--no-run")
    env.rule("GET", f"/{CID}/runs", lambda _: json_answer(200, "[]"), when=env.is_victim)
    result, report = env.apply()  # unchanged collections look for a run to adopt first
    victim_failed(result, report, "list runs", "answer is not an object")


def test_a_run_that_never_completes_times_out(env: Env) -> None:
    env.job.write_text(JOBS.replace("timeout: 3s, max_failed", "timeout: 1s, max_failed"))
    env.rule(
        "GET",
        f"/{CID}/runs/{RID}",
        lambda call: json_answer(
            200, json.dumps({**RUN_OK, "run_id": call["rid"], "status": "in_progress"})
        ),
        when=env.is_victim,
    )
    result, report = env.apply()
    assert result.exit_code == 1, result.output
    assert report is not None
    victim = next(c for c in report["collections"] if c["name"] == "victim")
    assert victim["run"]["status"] == "timed_out" and "left running" in victim["run"]["reason"]


def test_a_poll_that_never_answers_ends_at_the_run_timeout(env: Env) -> None:
    from sprunner.runs.poller import LAST_POLL_GRACE

    env.job.write_text(JOBS.replace("timeout: 3s, max_failed", "timeout: 1s, max_failed"))
    env.rule("GET", f"/{CID}/runs/{RID}", lambda _: HANG, when=env.is_victim)
    started = time.monotonic()
    result, report = env.apply()
    assert time.monotonic() - started < 1 + LAST_POLL_GRACE + 2  # not the client's 30 s x 6
    assert result.exit_code == 1, result.output
    assert report is not None
    victim = next(c for c in report["collections"] if c["name"] == "victim")
    assert victim["run"]["status"] == "timed_out"


# -- a collection deleted by someone else in the middle of an apply ------------------------
def _delete_then_pass(env: Env) -> Callable[[Call], None]:
    def delete(call: Call) -> None:
        env.engine.collections.pop(call["cid"], None)

    return delete


def test_deleted_between_create_and_run_is_created_again(env: Env) -> None:
    env.rule("POST", f"/{CID}/run", _delete_then_pass(env), when=env.is_victim, times=1)
    result, report = env.apply()
    assert result.exit_code == 0, result.output
    assert report is not None
    victim = next(c for c in report["collections"] if c["name"] == "victim")
    assert victim["action"] == "created" and victim["run"]["status"] == "completed"
    assert env.remote_names() == ["bystander", "victim"]
    result, report = env.apply("--no-run")  # and the state knows the new one
    assert result.exit_code == 0, result.output
    assert report is not None
    assert {c["action"] for c in report["collections"]} == {"unchanged"}


def test_deleted_between_list_and_put_is_created_again(env: Env) -> None:
    env.apply("--no-run")
    (env.job).write_text(JOBS.replace("shop.example.com/a", "shop.example.com/b"))
    env.rule("PUT", f"/{CID}", _delete_then_pass(env), when=env.is_victim, times=1)
    result, report = env.apply()
    assert result.exit_code == 0, result.output
    assert report is not None
    victim = next(c for c in report["collections"] if c["name"] == "victim")
    assert victim["action"] == "created" and victim["run"]["status"] == "completed"
    assert env.remote_names() == ["bystander", "victim"]


def test_deleted_while_polling(env: Env) -> None:
    env.rule("GET", f"/{CID}/runs/{RID}", _delete_then_pass(env), when=env.is_victim, times=1)
    result, report = env.apply()
    victim_failed(result, report, "get run", "not found", "[HTTP 404]")
