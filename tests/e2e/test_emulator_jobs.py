"""The emulator's jobs listing and results (SPEC §1 and §6), read with a plain HTTP client.

Simulate mode: outcomes follow words in the URL, `size=N` sets a result's size, and jobs
finish in pairs within the same millisecond, so paging must never drop a tie.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from sprunner.emulator.bodies import RESULT_INLINE_CAP
from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.emulator_helpers import all_jobs, http, run_path, start, wait_done
from tests.sites import PAGE, Site, refused_url

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOB_FIELDS = {
    "job_public_id", "run_public_id", "collection_id", "status", "status_code", "message",
    "url", "custom_id", "queued_at", "started_at", "completed_at", "execution_time_ms",
    "retries_attempted", "block_reason", "is_success",
}  # fmt: skip


def shop(n: int) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = [
        {"url": f"https://shop.test/p/{i}", "custom_id": f"p{i}"} for i in range(n)
    ]
    requests += [{"url": "https://shop.test/fail"}, {"url": "https://shop.test/timeout"}]
    requests += [{"url": "https://shop.test/blocked", "custom_id": "b"}]
    return requests


@pytest.fixture
def done_run(emulator: EmulatorHandle) -> Iterator[tuple[EmulatorHandle, dict[str, Any]]]:
    with http(emulator) as client:
        run = start(client, shop(40))
        wait_done(client, run)
    yield emulator, run


def test_jobs_carry_every_field_and_ties_share_a_millisecond(
    done_run: tuple[EmulatorHandle, dict[str, Any]],
) -> None:
    emulator, run = done_run
    with http(emulator) as client:
        answer = client.get(run_path(run)).json()
        jobs = all_jobs(client, run)
    assert answer["all_jobs_persisted"] is True and isinstance(answer["created_at"], float)
    assert answer["job_ids"] == [j["job_public_id"] for j in jobs]
    assert len(jobs) == 43 and all(set(j) == JOB_FIELDS for j in jobs)
    for job in jobs:
        for key in ("queued_at", "started_at", "completed_at"):
            assert ISO_MS.match(job[key]), job
        assert job["run_public_id"] == run["run_id"] and job["retries_attempted"] == 0
        assert job["is_success"] is (job["status"] == "completed")
    by_url = {j["url"]: j for j in jobs}
    assert by_url["https://shop.test/fail"]["status"] == "failed"
    assert by_url["https://shop.test/fail"]["status_code"] == 500
    assert by_url["https://shop.test/timeout"]["status"] == "timeout"
    blocked = by_url["https://shop.test/blocked"]
    assert (blocked["status"], blocked["block_reason"], blocked["custom_id"]) == (
        "failed", "captcha", "b"
    )  # fmt: skip
    ties = Counter(j["completed_at"] for j in jobs)
    assert max(ties.values()) >= 2, "some jobs finish in the same millisecond"


@pytest.mark.parametrize("order_by", ["id", "completed_at"])
@pytest.mark.parametrize("order_dir", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_cursor_paging_lists_each_job_once_in_order(
    done_run: tuple[EmulatorHandle, dict[str, Any]], order_by: str, order_dir: str, limit: int
) -> None:
    emulator, run = done_run
    with http(emulator) as client:
        jobs = all_jobs(client, run, order_by=order_by, order_dir=order_dir, limit=limit)
    ids = [j["job_public_id"] for j in jobs]
    assert len(ids) == len(set(ids)) == 43
    keys = [
        (j[order_by if order_by == "completed_at" else "job_public_id"], j["job_public_id"])
        for j in jobs
    ]
    assert keys == sorted(keys, reverse=order_dir == "desc")


def test_status_filter_since_and_bad_queries(
    done_run: tuple[EmulatorHandle, dict[str, Any]],
) -> None:
    emulator, run = done_run
    with http(emulator) as client:
        failed = all_jobs(client, run, status_filter="failed")
        finished = all_jobs(client, run, status_filter="failed,timeout")
        everything = all_jobs(client, run, order_by="completed_at")
        # A tie's time: strictly after it excludes both jobs of the pair.
        tie = Counter(j["completed_at"] for j in everything).most_common(1)[0][0]
        after = all_jobs(client, run, since_completed_at=tie, order_by="completed_at")
        offset = all_jobs(client, run, since_completed_at=tie.replace("Z", "+00:00"))
        bad = [
            {"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"status_filter": "done"},
            {"status_filter": "completed,bogus"}, {"order_by": "url"}, {"order_dir": "up"},
            {"since_completed_at": "yesterday"}, {"cursor": "garbage!"},
        ]  # fmt: skip
        statuses = [client.get(run_path(run) + "/jobs", params=q).status_code for q in bad]
        page = client.get(run_path(run) + "/jobs", params={"limit": 2}).json()
        mismatched = client.get(
            run_path(run) + "/jobs", params={"cursor": page["cursor_next"], "order_dir": "desc"}
        )
    assert {j["url"] for j in failed} == {"https://shop.test/fail", "https://shop.test/blocked"}
    assert {j["status"] for j in finished} == {"failed", "timeout"} and len(finished) == 3
    assert after == [j for j in everything if j["completed_at"] > tie]
    assert len(after) < len(everything) - 1 and offset == [
        j for j in all_jobs_by_id(everything) if j["completed_at"] > tie
    ]
    assert statuses == [422] * len(bad) and mismatched.status_code == 422


def all_jobs_by_id(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda j: j["job_public_id"])


def test_processing_jobs_and_pending_results() -> None:
    with running_emulator(run_seconds=30) as emulator, http(emulator) as client:
        run = start(client, [{"url": f"https://x.test/{i}"} for i in range(4)])
        jobs = all_jobs(client, run)
        pending = client.get(f"{run_path(run)}/jobs/{jobs[0]['job_public_id']}/result")
        none_done = all_jobs(client, run, status_filter="completed,failed,timeout")
    assert {j["status"] for j in jobs} == {"processing"}
    assert all(j["completed_at"] is None and j["status_code"] is None for j in jobs)
    assert pending.status_code == 404 and none_done == []
    assert pending.json()["detail"]["error_code"] == "result_pending"


def test_inline_results_cap_pages_and_large_bodies_are_fetched_alone(
    emulator: EmulatorHandle,
) -> None:
    sizes = {"small": 5_000, "edge": RESULT_INLINE_CAP, "large": RESULT_INLINE_CAP + 1}
    requests = [{"url": f"https://x.test/{k}?size={v}", "custom_id": k} for k, v in sizes.items()]
    requests += [{"url": f"https://x.test/p/{i}"} for i in range(150)] + [
        {"url": "https://x.test/fail"}
    ]
    with http(emulator) as client:
        run = start(client, requests)
        wait_done(client, run)
        first = client.get(run_path(run) + "/jobs", params={"include_results": "true"}).json()
        jobs = all_jobs(client, run, include_results="true")
        bodies = {
            j["custom_id"]: client.get(f"{run_path(run)}/jobs/{j['job_public_id']}/result")
            for j in jobs
            if j["custom_id"] in sizes
        }
    assert len(first["items"]) == 100 and first["has_more"] is True
    inline = {j["custom_id"]: j["result"] for j in jobs if j["custom_id"] in sizes}
    assert inline["small"] is not None and inline["edge"] is not None and inline["large"] is None
    for name, size in sizes.items():
        answer = bodies[name]
        assert answer.status_code == 200 and len(answer.content) == size, name
        body = answer.json()
        assert body["custom_id"] == name and body["statusCode"] == 200 and body["html"]
        assert set(body) >= {"url", "html", "markdown", "message", "executionTime"}
    assert inline["small"] == bodies["small"].json(), "inline and alone: the same body"
    (failed,) = [j for j in jobs if j["status"] == "failed"]
    assert failed["result"] is None, "only completed jobs carry a result"


def test_result_codes_invalid_lost_and_expired() -> None:
    with (
        running_emulator(run_seconds=0.05, result_retention=0.5) as emulator,
        http(emulator) as client,
    ):
        run = start(client, [{"url": "https://x.test/a"}, {"url": "https://x.test/result-lost"}])
        wait_done(client, run)
        jobs = {j["url"]: j for j in all_jobs(client, run, include_results="true")}
        kept, lost = jobs["https://x.test/a"], jobs["https://x.test/result-lost"]
        path = run_path(run) + "/jobs/{}/result"
        fresh = client.get(path.format(kept["job_public_id"]))
        lost_answer = client.get(path.format(lost["job_public_id"]))
        invalid = [client.get(path.format(j)) for j in ("nope", run["run_id"] + "-9999999")]
        deadline = time.monotonic() + 10
        while (expired := client.get(path.format(kept["job_public_id"]))).status_code == 200:
            assert time.monotonic() < deadline, "the result never expired"
            time.sleep(0.05)
        inline_after = all_jobs(client, run, include_results="true")
    assert fresh.status_code == 200 and kept["result"] == fresh.json()
    assert lost["result"] is None and lost["status"] == "completed"
    assert lost_answer.json()["detail"]["error_code"] == "result_lost"
    assert [a.json()["detail"]["error_code"] for a in invalid] == ["job_id_invalid"] * 2
    assert expired.status_code == 404
    detail = expired.json()["detail"]
    assert detail["error_code"] == "result_expired" and detail["message"]
    assert detail["completed_at"] == kept["completed_at"]
    assert all(j["result"] is None for j in inline_after)


def test_flaky_urls_fail_first_then_succeed_across_collections(emulator: EmulatorHandle) -> None:
    requests = [
        {"url": "https://x.test/flaky", "custom_id": "a"},
        {"url": "https://x.test/flaky", "custom_id": "b"},
        {"url": "https://x.test/flaky2"},
        {"url": "https://x.test/flaky-timeout"},
        {"url": "https://x.test/fail"},
        {"url": "https://x.test/timeout"},
    ]

    def outcomes(subset: list[dict[str, Any]], name: str) -> dict[tuple[str, Any], str]:
        with http(emulator) as client:
            run = start(client, subset, name=name)
            wait_done(client, run)
            return {(j["url"], j["custom_id"]): j["status"] for j in all_jobs(client, run)}

    first = outcomes(requests, "first")
    second = outcomes(requests[1:], "retry")  # another collection: attempts still count
    third = outcomes(requests, "first-again")
    u = "https://x.test/"
    assert first == {
        (u + "flaky", "a"): "failed", (u + "flaky", "b"): "failed", (u + "flaky2", None): "failed",
        (u + "flaky-timeout", None): "timeout", (u + "fail", None): "failed",
        (u + "timeout", None): "timeout",
    }  # fmt: skip
    assert second[(u + "flaky", "b")] == "completed" and second[(u + "flaky2", None)] == "failed"
    assert second[(u + "flaky-timeout", None)] == "completed"
    assert third[(u + "flaky", "a")] == "completed" and third[(u + "flaky2", None)] == "completed"
    assert third[(u + "fail", None)] == "failed" and third[(u + "timeout", None)] == "timeout"


def test_fetch_mode_results_keep_the_page_status_and_markdown(
    fetch_emulator: EmulatorHandle, target_site: Site
) -> None:
    urls = [f"{target_site.url}/page", f"{target_site.url}/error", refused_url()]
    with http(fetch_emulator) as client:
        run = start(client, [{"url": u, "custom_id": str(i)} for i, u in enumerate(urls)])
        wait_done(client, run)
        jobs = {j["url"]: j for j in all_jobs(client, run, include_results="true")}
        alone = {
            url: client.get(f"{run_path(run)}/jobs/{job['job_public_id']}/result").json()
            for url, job in jobs.items()
        }
    page = jobs[urls[0]]
    assert (page["status"], page["status_code"], page["is_success"]) == ("completed", 200, True)
    assert page["result"] == alone[urls[0]]
    assert page["result"]["html"] == PAGE and page["result"]["statusCode"] == 200
    markdown = page["result"]["markdown"]
    assert "# Shoes" in markdown and "[next page](/c/shoes?page=2)" in markdown
    assert "Red & blue" in markdown and "- Boots" in markdown
    assert "<" not in markdown and "color: red" not in markdown
    broken = jobs[urls[1]]
    assert (broken["status"], broken["status_code"], broken["result"]) == ("failed", 500, None)
    assert alone[urls[1]]["html"] == "broken" and alone[urls[1]]["statusCode"] == 500
    assert jobs[urls[2]]["status"] == "failed" and alone[urls[2]]["html"] is None


def test_shortening_run_seconds_completes_the_runs_under_way() -> None:
    """Tests let a left-over run complete by shortening `engine.run_seconds`."""
    with running_emulator(run_seconds=60) as emulator, http(emulator) as client:
        run = start(client, [{"url": f"https://x.test/{i}"} for i in range(5)])
        emulator.engine.run_seconds = 0.05
        wait_done(client, run, deadline=5)
        times = [j["completed_at"] for j in all_jobs(client, run, order_by="completed_at")]
        assert times == sorted(times) and all(times)
