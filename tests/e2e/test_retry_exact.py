"""`sprunner retry REPORT` re-runs exactly what failed, or nothing (issue #22 item 5; SPEC
§10 "Retry re-runs exactly what failed").

A report shows a failed job's URL masked, so two requests that differ only by an env()
value look alike in it; an API may also echo a URL changed. The report names each failed
job's request by a keyed fingerprint instead, and `retry` matches on it: a report it cannot
match exactly (no fingerprint, another key, a request gone from the job file, a job that
could be several requests) is refused with exit 2, and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.echo import Echo
from sprunner.emulator.server import running_emulator
from sprunner.report.fingerprints import RequestFingerprints
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, check_report, write_job

# Two tokens: the emulator fails a URL that says "fail", so only the second request fails.
GOOD, BAD = "okay-token-1234", "fail-token-5678"
TWINS = """
version: 1
collections:
  - name: twins
    requests:
      - url: "https://shop.example.com/p?t={{ env('GOOD_TOKEN') }}"
      - url: "https://shop.example.com/p?t={{ env('BAD_TOKEN') }}"
    run: {poll_interval: 0.05s}
"""


@pytest.fixture
def sprunner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sprunner]:
    monkeypatch.setenv("GOOD_TOKEN", GOOD)
    monkeypatch.setenv("BAD_TOKEN", BAD)
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def _retry(sprunner: Sprunner, report: Path, *args: str, key: str | None = None) -> Any:
    new = sprunner.workdir / "retried.json"
    new.unlink(missing_ok=True)
    return sprunner("retry", str(report), "--report", str(new), *args, key=key), new


def _twin_report(sprunner: Sprunner) -> tuple[Path, dict[str, Any]]:
    result, report = sprunner.apply(write_job(sprunner.workdir, TWINS))
    assert result.exit_code == 1, result.output
    return sprunner.workdir / "report.json", report


def test_the_failed_twin_is_retried_not_the_one_that_succeeded(sprunner: Sprunner) -> None:
    path, report = _twin_report(sprunner)
    [job] = report["collections"][0]["run"]["failed_jobs"]
    assert job["url"] == "https://shop.example.com/p?t=***"  # as the other request shows
    fingerprints = RequestFingerprints.from_api_key(sprunner.emulator.api_key)
    assert job["request"] == fingerprints.of({"url": f"https://shop.example.com/p?t={BAD}"})
    assert GOOD not in path.read_text() and BAD not in path.read_text()

    result, new = _retry(sprunner, path)
    # The failed request is run again, and fails again: the report says so, never ok.
    assert result.exit_code == 1, result.output
    assert sprunner.remote()["twins.retry"] == [[{"url": f"https://shop.example.com/p?t={BAD}"}]]
    retried = check_report(new)
    assert retried["ok"] is False
    [still] = retried["collections"][0]["run"]["final"]["failed_jobs"]
    assert (still["url"], still["request"], still["attempts"]) == (job["url"], job["request"], 2)


def test_a_job_echoed_changed_is_still_its_request(tmp_path: Path) -> None:
    """An API that reorders the query, adds a fragment and a parameter and upper-cases the
    URL: each failed job is still the request it was, in the report and for `retry`."""
    text = """
    version: 1
    collections:
      - name: shop
        requests:
          - url: "https://shop.example.com/ok?a=1&b=2"
          - url: "https://shop.example.com/fail?a=1&b=2"
            custom_id: first
          - url: "https://shop.example.com/fail?a=1&b=3"
        run: {poll_interval: 0.05s}
    """
    echo = Echo(transforms=("reorder", "fragment", "param", "upper"))
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=echo.wrap) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, report = sprunner.apply(write_job(tmp_path, text))
        assert result.exit_code == 1, result.output
        jobs = report["collections"][0]["run"]["failed_jobs"]
        fingerprints = RequestFingerprints.from_api_key(emulator.api_key)
        expected = {
            fingerprints.of({"url": "https://shop.example.com/fail?a=1&b=2", "custom_id": "first"}),
            fingerprints.of({"url": "https://shop.example.com/fail?a=1&b=3"}),
        }
        assert {j["request"] for j in jobs} == expected
        result, _ = _retry(sprunner, tmp_path / "report.json")
        assert result.exit_code == 1, result.output
        assert sprunner.remote()["shop.retry"] == [
            [
                {"url": "https://shop.example.com/fail?a=1&b=2", "custom_id": "first"},
                {"url": "https://shop.example.com/fail?a=1&b=3"},
            ]
        ]


def _rewritten(path: Path, change: Any) -> Path:
    report = json.loads(path.read_text())
    for job in report["collections"][0]["run"]["failed_jobs"]:
        change(job)
    out = path.with_name("changed.json")
    out.write_text(json.dumps(report))
    return out


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda job: job.pop("request"), "written by an older sprunner"),
        (lambda job: job.update(request=None), "none or several matched its URL"),
        (
            lambda job: job.update(request="0" * 12 + ":" + "0" * 32),
            "written with another API key",
        ),
    ],
    ids=["older-report", "ambiguous", "other-key"],
)
def test_a_report_that_cannot_be_matched_exactly_is_refused(
    sprunner: Sprunner, change: Any, said: str
) -> None:
    path, _ = _twin_report(sprunner)
    sprunner.reset_calls()
    result, _ = _retry(sprunner, _rewritten(path, change))
    assert result.exit_code == 2, result.output
    assert "cannot tell exactly which requests failed, so nothing is retried" in result.output
    assert said in result.output
    assert sprunner.calls() == {}


def test_a_report_made_under_another_key_is_refused(sprunner: Sprunner) -> None:
    path, _ = _twin_report(sprunner)
    sprunner.reset_calls()
    result, _ = _retry(sprunner, path, key="another-key-entirely")
    assert result.exit_code == 2, result.output
    assert "written with another API key" in result.output
    assert sprunner.calls() == {}


def test_a_request_gone_from_the_job_file_is_refused(sprunner: Sprunner) -> None:
    path, _ = _twin_report(sprunner)
    job = sprunner.workdir / "jobs.yaml"
    job.write_text(job.read_text().replace("p?t={{ env('BAD_TOKEN')", "q?t={{ env('BAD_TOKEN')"))
    sprunner.reset_calls()
    result, _ = _retry(sprunner, path)
    assert result.exit_code == 2, result.output
    assert "its request is not in the job file" in result.output
    assert sprunner.calls() == {}


def test_requests_an_echo_cannot_tell_apart_are_named_when_all_failed(
    sprunner: Sprunner,
) -> None:
    """Two requests that differ only in a header echo the same URL: when both failed, the
    two jobs are the two requests (each named once); `retry` re-runs exactly those."""
    text = """
    version: 1
    collections:
      - name: pair
        requests:
          - url: https://shop.example.com/fail
            headers: {Accept-Language: en}
          - url: https://shop.example.com/fail
            headers: {Accept-Language: fr}
          - url: https://shop.example.com/ok
        run: {poll_interval: 0.05s}
    """
    result, report = sprunner.apply(write_job(sprunner.workdir, text))
    assert result.exit_code == 1, result.output
    fingerprints = RequestFingerprints.from_api_key(sprunner.emulator.api_key)
    named = {
        fingerprints.of({"url": "https://shop.example.com/fail", "headers": {"Accept-Language": x}})
        for x in ("en", "fr")
    }
    assert {j["request"] for j in report["collections"][0]["run"]["failed_jobs"]} == named
    result, _ = _retry(sprunner, sprunner.workdir / "report.json")
    assert result.exit_code == 1, result.output
    assert sprunner.remote()["pair.retry"] == [
        [
            {"url": "https://shop.example.com/fail", "headers": {"Accept-Language": "en"}},
            {"url": "https://shop.example.com/fail", "headers": {"Accept-Language": "fr"}},
        ]
    ]
