"""The JUnit report: well-formed, counts that match the outcome, failed jobs in the text."""

from __future__ import annotations

import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sprunner.errors import ReportError
from sprunner.report.junit import to_xml, write_junit
from sprunner.report.outcome import ApplyOutcome, CollectionOutcome, RunOutcome, ShownJob
from sprunner.util.redact import Redactor

SECRET = "sk-live-0123456789abcdef"


def _job(n: int, *, status: str = "failed", error: str = "Connection timeout") -> ShownJob:
    return ShownJob(
        job_id=f"j{n}", url=f"https://shop.example.com/p/{n}", status=status, error=error
    )


def _completed(*jobs: ShownJob, within: bool = True) -> RunOutcome:
    failed = sum(1 for j in jobs if j.status == "failed")
    return RunOutcome(
        status="completed",
        run_id="r-1",
        total_requests=10,
        success_requests=10 - len(jobs),
        failed_requests=failed,
        timeout_requests=len(jobs) - failed,
        failed_jobs=jobs,
        within_max_failed=within,
    )


def _outcome(
    *collections: CollectionOutcome,
    interrupted_by: int | None = None,
    warnings: tuple[str, ...] = (),
) -> ApplyOutcome:
    return ApplyOutcome(
        api_url="https://api.example.com",
        started_at=1_795_000_000.0,
        finished_at=1_795_000_190.5,
        collections=collections,
        interrupted_by=interrupted_by,
        warnings=warnings,
    )


MIXED = _outcome(
    CollectionOutcome("ok-run", "jobfiles/a.yaml", "unchanged", "c1", 10, _completed()),
    CollectionOutcome(
        "tolerated",
        "jobfiles/a.yaml",
        "update",
        "c2",
        10,
        _completed(_job(1)),  # one failed job, within max_failed: a pass
    ),
    CollectionOutcome(
        "too-many",
        "jobfiles/b.yaml",
        "create",
        "c3",
        10,
        _completed(_job(1), _job(2, status="timeout", error="Timed out"), within=False),
    ),
    CollectionOutcome(
        "slow", "jobfiles/b.yaml", "unchanged", "c4", 10, RunOutcome("timed_out", "r-4")
    ),
    CollectionOutcome("broken", "jobfiles/c.yaml", "error", error="422: URL blocked"),
    CollectionOutcome(
        "not-due",
        "jobfiles/c.yaml",
        "unchanged",
        "c6",
        10,
        RunOutcome("skipped", reason="not due until 18:00 UTC"),
    ),
    CollectionOutcome(
        "too-dear",
        "jobfiles/c.yaml",
        "unchanged",
        "c7",
        10,
        RunOutcome("skipped", reason="would pass --max-credits 100", refused=True),
    ),
    CollectionOutcome("no-run", "jobfiles/c.yaml", "create", "c8", 10),
)


def _parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_written_file_is_well_formed_with_one_case_per_collection(tmp_path: Path) -> None:
    path = tmp_path / "out" / "junit.xml"
    write_junit(MIXED, path)

    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "sprunner"
    cases = _cases(suite)
    assert list(cases) == [c.name for c in MIXED.collections]
    assert cases["too-many"].get("classname") == "jobfiles/b.yaml"
    assert suite.get("time") == "190.500"
    assert suite.get("timestamp", "").startswith("2026-")
    # No temporary file is left beside the report.
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]


def test_counts_match_the_outcome() -> None:
    root = _parse(to_xml(MIXED))
    suite = root.find("testsuite")
    assert suite is not None
    failing = [c.name for c in MIXED.collections if not c.ok]
    assert failing == ["too-many", "slow", "broken", "too-dear"]
    for element in (root, suite):
        assert element.get("tests") == "8"
        # The API error of "broken" is an <error>, the other three are failures.
        assert element.get("failures") == str(len(failing) - 1)
        assert element.get("errors") == "1"
    assert suite.get("skipped") == "1"
    assert root.get("skipped") is None  # junit-10.xsd has no `skipped` on <testsuites>
    cases = _cases(suite)
    assert {n for n, c in cases.items() if c.find("failure") is not None} == set(failing) - {
        "broken"
    }
    assert {n for n, c in cases.items() if c.find("error") is not None} == {"broken"}
    assert {n for n, c in cases.items() if c.find("skipped") is not None} == {"not-due"}


def test_failures_say_why_and_list_failed_jobs() -> None:
    cases = _cases(_parse(to_xml(MIXED)))

    def failure(name: str) -> ET.Element:
        element = cases[name].find("failure")
        assert element is not None
        return element

    too_many = failure("too-many")
    assert too_many.get("message") == "2 failed/timed-out jobs over max_failed"
    assert too_many.get("type") == "max_failed"
    text = too_many.text or ""
    assert "https://shop.example.com/p/1\tfailed\tConnection timeout" in text
    assert "https://shop.example.com/p/2\ttimeout\tTimed out" in text

    assert failure("slow").get("type") == "timed_out"
    error = cases["broken"].find("error")
    assert error is not None and error.get("message") == "422: URL blocked"
    assert "max-credits" in (failure("too-dear").get("message") or "")

    skipped = cases["not-due"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not due until 18:00 UTC"


def test_interrupted_apply_is_marked_and_in_progress_runs_fail() -> None:
    outcome = _outcome(
        CollectionOutcome("mid", "a.yaml", "unchanged", "c1", 3, RunOutcome("in_progress", "r")),
        interrupted_by=signal.SIGTERM,
        warnings=("collection 'x' expands to no request",),
    )
    suite = _parse(to_xml(outcome)).find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    assert "interrupted by signal 15" in (suite.findtext("system-err") or "")
    assert "expands to no request" in (suite.findtext("system-err") or "")


def test_long_failed_job_lists_are_capped() -> None:
    jobs = tuple(_job(n) for n in range(50))
    outcome = _outcome(
        CollectionOutcome("big", "a.yaml", "unchanged", "c", 50, _completed(*jobs, within=False))
    )
    text = _cases(_parse(to_xml(outcome, max_failed_jobs=10)))["big"].findtext("failure") or ""
    assert "p/9\t" in text
    assert "p/10\t" not in text
    assert "and 40 more" in text


def test_secrets_are_redacted(tmp_path: Path) -> None:
    outcome = _outcome(
        CollectionOutcome(
            f"c-{SECRET}",
            "a.yaml",
            "unchanged",
            "c1",
            1,
            _completed(
                ShownJob("j", f"https://x.example/?token={SECRET}", "failed", f"bad {SECRET}"),
                within=False,
            ),
        ),
        CollectionOutcome("e", "a.yaml", "error", error=f"401 for key {SECRET}"),
        warnings=(f"env value {SECRET}",),
    )
    path = tmp_path / "junit.xml"
    write_junit(outcome, path, redactor=Redactor([SECRET]))
    data = path.read_text(encoding="utf-8")
    assert SECRET not in data
    assert "token=***" in data


def test_control_characters_from_the_api_do_not_break_the_xml() -> None:
    outcome = _outcome(
        CollectionOutcome("c", "a.yaml", "error", error="bad byte \x00\x1b[31m here\ufffe"),
    )
    root = _parse(to_xml(outcome))
    failure = next(root.iter("error"))  # an API error
    assert failure.get("message") == "bad byte [31m here"


def test_replaces_an_existing_report_and_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("old", encoding="utf-8")
    write_junit(_outcome(), path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "0"
    assert os.stat(path).st_mode & 0o444 == 0o444


def test_an_unwritable_path_is_a_report_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ReportError, match="cannot write the JUnit report"):
        write_junit(_outcome(), blocker / "junit.xml")


def test_validates_against_the_jenkins_xunit_schema_and_carries_run_durations() -> None:
    import dataclasses

    import xmlschema

    schema = xmlschema.XMLSchema(str(Path(__file__).parents[1] / "data" / "junit-10.xsd"))
    timed = RunOutcome("completed", "r-9", 1, 1, started_at=1000.0, finished_at=1012.25)
    outcome = dataclasses.replace(
        MIXED,
        collections=(
            *MIXED.collections,
            CollectionOutcome("timed", "t.yaml", "create", "c9", 1, timed),
        ),
        apply_id="abc123",
    )
    data = to_xml(outcome)
    schema.validate(data.decode("utf-8"))
    cases = _cases(_parse(data))
    assert cases["timed"].get("time") == "12.250"
    assert cases["not-due"].get("time") == "0.000"


def test_errored_and_interrupted_cases_carry_the_time_they_took() -> None:
    """Never time="0.000" for a case that did something: an error carries the time up to
    it, an interrupted run the time from its start to the signal (the apply's end)."""
    started, ended = 1_795_000_000.0, 1_795_000_190.5
    outcome = ApplyOutcome(
        api_url="https://api.example.com",
        started_at=started,
        finished_at=ended,
        collections=(
            # The create failed for good 4.25 s into the apply (after its retries).
            CollectionOutcome(
                "broken", "a.yaml", "error", error="422: blocked", failed_at=started + 4.25
            ),
            # Its run started, then the polls failed for good.
            CollectionOutcome(
                "lost",
                "a.yaml",
                "unchanged",
                "c2",
                3,
                RunOutcome("error", "r2", started_at=started + 10.0),
                error="503 from the API",
                failed_at=started + 70.5,
            ),
            # Still running when SIGTERM came: from its start to the apply's end.
            CollectionOutcome(
                "mid",
                "a.yaml",
                "unchanged",
                "c3",
                3,
                RunOutcome("in_progress", "r3", started_at=started + 90.5),
            ),
            # Cut short by the signal before its change was confirmed: the whole apply.
            CollectionOutcome("undone", "a.yaml", "error", error="interrupted"),
            # Nothing to do: no time.
            CollectionOutcome("idle", "a.yaml", "unchanged", "c5", 3, RunOutcome("skipped")),
        ),
        interrupted_by=signal.SIGTERM,
    )
    cases = _cases(_parse(to_xml(outcome)))
    times = {name: case.get("time") for name, case in cases.items()}
    assert times == {
        "broken": "4.250",
        "lost": "60.500",
        "mid": "100.000",
        "undone": "190.500",
        "idle": "0.000",
    }


def test_an_apply_that_failed_as_a_whole_takes_its_elapsed_time() -> None:
    import dataclasses

    failed = dataclasses.replace(
        _outcome(), error="the API cannot be used: 401", failed_exit_code=3
    )
    case = _cases(_parse(to_xml(failed)))["apply"]
    assert case.get("time") == "190.500"
    assert case.find("error") is not None
