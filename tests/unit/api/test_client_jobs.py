"""The jobs listing and the single result (SPEC §1): query, parsing, hostile answers, 404 codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sprunner.api.errors import BadAnswerError, NotFoundError, ResultUnavailableError
from sprunner.api.models import Job, JobPage, Run

from .helpers import KEY, RUN, Script, client, reply, run

JOB = {
    "job_public_id": "j1",
    "run_public_id": "r1",
    "collection_id": "c1",
    "status": "completed",
    "status_code": 200,
    "message": "OK",
    "url": "https://shop.example/a",
    "custom_id": "a-1",
    "queued_at": "2026-11-28T12:00:00.000Z",
    "started_at": "2026-11-28T12:00:01.000Z",
    "completed_at": "2026-11-28T12:00:02.123Z",
    "execution_time_ms": 812,
    "retries_attempted": 0,
    "block_reason": None,
    "is_success": True,
    "future_field": {"ignored": True},
}
PAGE = {"items": [JOB], "cursor_next": None, "has_more": False}


def _jobs(script: Script, **kw: Any) -> JobPage:
    async def go() -> JobPage:
        async with client(script) as api:
            return await api.list_jobs("c1", "r1", name="shop", **kw)

    return run(go())


def test_every_query_parameter_is_sent_and_every_field_parsed() -> None:
    script = Script([reply(200, {**PAGE, "cursor_next": "n2", "has_more": True})])
    page = _jobs(
        script,
        cursor="n1",
        limit=50,
        status_filter=["completed", "failed", "timeout"],
        order_by="completed_at",
        order_dir="asc",
        since_completed_at="2026-11-28T12:00:00.000Z",
    )
    request = script.seen[0]
    assert request.method == "GET"
    assert request.url.path == "/v1/async/collections/c1/runs/r1/jobs"
    assert dict(request.url.params) == {
        "cursor": "n1",
        "limit": "50",
        "status_filter": "completed,failed,timeout",
        "order_by": "completed_at",
        "order_dir": "asc",
        "since_completed_at": "2026-11-28T12:00:00.000Z",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert page == JobPage(
        items=(
            Job(
                job_id="j1",
                run_id="r1",
                collection_id="c1",
                status="completed",
                url="https://shop.example/a",
                status_code=200,
                message="OK",
                custom_id="a-1",
                queued_at="2026-11-28T12:00:00.000Z",
                started_at="2026-11-28T12:00:01.000Z",
                completed_at="2026-11-28T12:00:02.123Z",
                execution_time_ms=812,
                retries_attempted=0,
                block_reason=None,
                is_success=True,
            ),
        ),
        cursor_next="n2",
        has_more=True,
    )
    assert not page.items[0].has_result and page.items[0].finished
    assert isinstance(page.items[0].execution_time_ms, int)


def test_defaults_send_no_query_and_tolerate_sparse_jobs() -> None:
    sparse = {"job_public_id": 7, "status": "processing", "url": "https://x/"}
    page = _jobs(script := Script([reply(200, {**PAGE, "items": [sparse]})]))
    assert dict(script.seen[0].url.params) == {}
    job = page.items[0]
    assert (job.job_id, job.run_id, job.collection_id) == ("7", "r1", "c1")
    assert job.completed_at is None and not job.finished and job.result is None


def test_include_results_caps_the_page_at_100_and_tells_absent_from_null() -> None:
    body = {"html": "<p>hi</p>", "statusCode": 200}
    items = [{**JOB, "result": body}, {**JOB, "job_public_id": "big", "result": None}]
    script = Script([reply(200, {**PAGE, "items": items})] * 2)
    page = _jobs(script, include_results=True)
    assert script.seen[0].url.params["include_results"] == "true"
    assert script.seen[0].url.params["limit"] == "100"
    first, big = page.items
    assert first.has_result and first.result == body
    # Over the inline cap: present but null, to be fetched alone.
    assert big.has_result and big.result is None
    _jobs(script, include_results=True, limit=1000)
    assert script.seen[1].url.params["limit"] == "100"


@pytest.mark.parametrize(
    ("kw", "complaint"),
    [
        ({"limit": 0}, "limit must be 1..1000"),
        ({"limit": 1001}, "limit must be 1..1000"),
        ({"status_filter": ["completed", "done"]}, "unknown job status 'done'"),
        ({"order_by": "url"}, "order_by"),
        ({"order_dir": "up"}, "order_dir"),
    ],
)
def test_bad_arguments_are_refused_before_sending(kw: dict[str, Any], complaint: str) -> None:
    script = Script([reply(200, PAGE)])
    with pytest.raises(ValueError, match=complaint):
        _jobs(script, **kw)
    assert script.seen == []


def test_a_comma_separated_status_string_is_accepted() -> None:
    script = Script([reply(200, PAGE)])
    _jobs(script, status_filter="failed,timeout")
    assert script.seen[0].url.params["status_filter"] == "failed,timeout"


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ([JOB], "not an object"),
        ({"cursor_next": None, "has_more": False}, "no 'items'"),
        ({**PAGE, "items": {"0": JOB}}, "not a list"),
        ({**PAGE, "has_more": "no"}, "has_more"),
        ({**PAGE, "has_more": True}, "has_more without a cursor_next"),
        ({**PAGE, "has_more": True, "cursor_next": "n1"}, "cursor does not move"),
        ({**PAGE, "cursor_next": 5}, "cursor_next is not a string"),
        ({**PAGE, "items": [JOB] * 11}, "11 jobs, more than the 10"),
        ({**PAGE, "items": [{**JOB, "status": "exploded"}]}, r"items\[0\].status"),
        ({**PAGE, "items": [{**JOB, "job_public_id": None}]}, "job_public_id"),
        ({**PAGE, "items": [{**JOB, "url": 3}]}, "url is not a string"),
        ({**PAGE, "items": [{**JOB, "status_code": "200"}]}, "status_code is not an integer"),
        ({**PAGE, "items": [{**JOB, "is_success": 1}]}, "is_success is not a boolean"),
        ({**PAGE, "items": [{**JOB, "execution_time_ms": "fast"}]}, "execution_time_ms is not"),
        ({**PAGE, "items": [{**JOB, "completed_at": "not-a-date"}]}, "completed_at is not an ISO"),
        ({**PAGE, "items": [{**JOB, "completed_at": "0001-01-01T00:00:00Z"}]}, "the year 1 "),
        (json.dumps({**PAGE, "has_more": True, "cursor_next": "\udc00"}), "surrogate"),
        ({**PAGE, "items": [{**JOB, "completed_at": 17}]}, "completed_at is not a string"),
        ({**PAGE, "items": [{**JOB, "result": "<html>"}]}, "result is not an object"),
        ({**PAGE, "items": [{**JOB, "run_public_id": "r9"}]}, "job of run 'r9', not 'r1'"),
        ({**PAGE, "items": [None]}, r"items\[0\] is not an object"),
    ],
)
def test_hostile_pages_are_bad_answers_not_crashes(answer: Any, complaint: str) -> None:
    script = Script([reply(200, answer)])
    with pytest.raises(BadAnswerError, match=complaint) as caught:
        _jobs(script, limit=10, cursor="n1")
    assert "list jobs" in str(caught.value) and "'shop'" in str(caught.value)
    assert len(script.seen) == 1, "a bad answer is not retried"


def test_a_huge_page_beyond_the_default_limit_is_refused() -> None:
    script = Script([reply(200, {**PAGE, "items": [JOB] * 1001})])
    with pytest.raises(BadAnswerError, match="more than the 1000"):
        _jobs(script)


def test_listing_is_retried_like_every_get() -> None:
    script = Script(
        [reply(503, "down"), httpx.ReadError("reset"), reply(429, {}), reply(200, PAGE)]
    )
    assert len(_jobs(script).items) == 1
    assert len(script.seen) == 4


def _result(script: Script, job_id: str = "j/1") -> Any:
    async def go() -> Any:
        async with client(script) as api:
            return await api.get_job_result("c1", "r1", job_id, name="shop")

    return run(go())


def test_result_is_fetched_by_its_path() -> None:
    body = {"url": "https://x/", "html": "<p/>", "statusCode": 200, "extracted_data": None}
    script = Script([reply(500, "boom"), reply(200, body)])
    assert _result(script) == body
    assert script.seen[1].url.raw_path == b"/v1/async/collections/c1/runs/r1/jobs/j%2F1/result"


@pytest.mark.parametrize(
    "code", ["result_pending", "result_expired", "result_lost", "job_id_invalid"]
)
def test_each_documented_404_is_result_unavailable_with_its_code(code: str) -> None:
    detail = {"detail": {"error_code": code, "message": f"the result is {code}"}}
    script = Script([reply(404, detail)])
    with pytest.raises(ResultUnavailableError) as caught:
        _result(script)
    assert caught.value.code == code and isinstance(caught.value, NotFoundError)
    assert code in str(caught.value) and "get job result" in str(caught.value)
    assert len(script.seen) == 1, "a 404 is not retried"


@pytest.mark.parametrize(
    "body",
    [{"detail": "run not found"}, {"detail": {"error_code": "other"}}, {"detail": [1]}, "nope"],
)
def test_other_404s_stay_plain_not_found(body: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        _result(Script([reply(404, body)]))
    assert not isinstance(caught.value, ResultUnavailableError)


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
def test_a_result_that_is_not_an_object_is_a_bad_answer(body: Any) -> None:
    with pytest.raises(BadAnswerError):
        _result(Script([reply(200, body)]))


def test_run_carries_job_ids_and_whether_all_jobs_are_persisted() -> None:
    full = {**RUN, "job_ids": ["j1", 2], "all_jobs_persisted": True, "created_at": 1.5}
    script = Script([reply(200, full), reply(200, RUN)])

    async def go() -> tuple[Run, Run]:
        async with client(script) as api:
            return await api.get_run("c1", "r1"), await api.get_run("c1", "r1")

    new, old = run(go())
    assert new.job_ids == ("j1", "2") and new.all_jobs_persisted is True
    assert new.created_at == 1.5
    assert old.job_ids == () and old.all_jobs_persisted is None


@pytest.mark.parametrize(
    "bad", [{"job_ids": "j1"}, {"job_ids": [None]}, {"all_jobs_persisted": "yes"}]
)
def test_mistyped_run_job_fields_are_bad_answers(bad: dict[str, Any]) -> None:
    async def go() -> None:
        async with client(Script([reply(200, {**RUN, **bad})])) as api:
            await api.get_run("c1", "r1")

    with pytest.raises(BadAnswerError):
        run(go())
