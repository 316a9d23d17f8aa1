"""Each call: method, path, body, headers, and parsing of the answer (tolerant / strict)."""

from __future__ import annotations

import pytest

from sprunner.api.errors import BadAnswerError
from sprunner.api.models import CollectionRef, FailedJob, Run, WriteResult

from .helpers import KEY, RUN, Script, client, reply, run


def test_list_collections_sends_key_and_name_filter() -> None:
    script = Script([reply(200, [{"name": "a", "id": "1", "extra": True}])])

    async def go() -> list[CollectionRef]:
        async with client(script) as api:
            return await api.list_collections(name="a b")

    assert run(go()) == [CollectionRef(id="1", name="a")]
    request = script.seen[0]
    assert request.method == "GET"
    assert request.url.path == "/v1/async/collections"
    assert request.url.params["name"] == "a b"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_create_sends_body_and_idempotency_key() -> None:
    answer = {
        "id": "c1",
        "name": "a",
        "message": "ok",
        "duplicates_skipped": 2,
        "blocked_urls": ["u"],
    }
    script = Script([reply(201, answer)])

    async def go() -> WriteResult:
        async with client(script) as api:
            return await api.create_collection("a", [{"url": "https://x/"}], idempotency_key="k")

    result = run(go())
    assert result == WriteResult("c1", "a", "ok", 2, ("u",), ())
    assert script.seen[0].method == "POST"
    assert script.seen[0].headers["Idempotency-Key"] == "k"
    assert script.bodies[0] == {"name": "a", "requests": [{"url": "https://x/"}]}


def test_update_delete_get() -> None:
    script = Script(
        [
            reply(200, {"id": "c/1", "name": "a", "message": "updated"}),
            reply(204, b""),
            reply(200, {"id": 7, "name": "a"}),
        ]
    )

    async def go() -> tuple[WriteResult, None, CollectionRef]:
        async with client(script) as api:
            updated = await api.update_collection("c/1", "a", [])
            deleted = await api.delete_collection("c/1")
            got = await api.get_collection("7")
            return updated, deleted, got

    updated, deleted, got = run(go())
    assert updated.id == "c/1" and deleted is None and got == CollectionRef("7", "a")
    assert [r.method for r in script.seen] == ["PUT", "DELETE", "GET"]
    # An id is one path segment, whatever it contains.
    assert script.seen[0].url.raw_path == b"/v1/async/collections/c%2F1"


def test_runs_are_parsed_with_failed_jobs_and_created_at() -> None:
    done = {
        **RUN,
        "status": "completed",
        "failed_jobs": [{"job_id": "j", "url": "https://x/", "status": "timeout", "error": None}],
    }
    script = Script(
        [
            reply(201, RUN),
            reply(200, done),
            reply(
                200,
                {"items": [{**done, "created_at": 17}, {**RUN, "created_at": None}], "total": 2},
            ),
        ]
    )

    async def go() -> tuple[Run, Run, list[Run]]:
        async with client(script) as api:
            started = await api.start_run("c1")
            got = await api.get_run("c1", "r1")
            listed = await api.list_runs("c1", status="completed")
            return started, got, listed

    started, got, listed = run(go())
    assert started.status == "in_progress" and not started.done and started.failed_jobs == ()
    assert got.done and got.failed_jobs == (FailedJob("j", "https://x/", "timeout", ""),)
    assert [r.created_at for r in listed] == [17.0, None]
    assert script.seen[0].method == "POST" and script.seen[0].url.path.endswith("/c1/run")
    assert script.seen[2].url.params["status_filter"] == "completed"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([{"name": "a"}], "answer\\[0\\] has no 'id'"),
        ({"items": []}, "answer is not a list"),
        ([{"id": "1", "name": 3}], "answer\\[0\\].name is not a string"),
        ("<html>", "not JSON"),
    ],
)
def test_missing_or_mistyped_fields_are_bad_answers(body: object, complaint: str) -> None:
    script = Script([reply(200, body)])

    async def go() -> None:
        async with client(script) as api:
            await api.list_collections()

    with pytest.raises(BadAnswerError, match=complaint) as caught:
        run(go())
    assert "list collections" in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    [{**RUN, "status": "exploded"}, {**RUN, "failed_requests": True}, {**RUN, "created_at": "x"}],
)
def test_run_with_unknown_status_or_mistyped_field_is_bad(bad: dict[str, object]) -> None:
    script = Script([reply(200, bad), reply(200, {"items": [bad], "total": 1})])

    async def go() -> None:
        async with client(script) as api:
            with pytest.raises(BadAnswerError, match=r"get run.*shop"):
                await api.get_run("c1", "r1", name="shop")
            with pytest.raises(BadAnswerError, match=r"items\[0\]"):
                await api.list_runs("c1", name="shop")

    run(go())


def test_a_poll_answer_about_another_run_is_refused() -> None:
    other = {**RUN, "run_id": "someone-elses"}
    script = Script([reply(200, other)])

    async def go() -> None:
        async with client(script) as api:
            await api.get_run("c1", "r1", name="shop")

    with pytest.raises(BadAnswerError, match="about run 'someone-elses', not 'r1'"):
        run(go())
