"""The JUnit XML report: one test case per collection, so CI systems show an apply natively.

Invariants:
- The file is written atomically (a temporary file in the same directory, then
  `os.replace`): a CI step that reads it never sees half a file.
- Every string that reaches the file passes through the command's redactor, so `env()`
  values and the API key never leak into CI artefacts; characters XML 1.0 cannot carry
  (control characters in an API error, say) are dropped, so the file is always well-formed.
- Pass, failure and skip follow `CollectionOutcome.ok` and `RunOutcome` exactly; this module
  decides nothing, it only words what the outcome already says. An API error (the
  collection's reconcile, or its run, failed for good) is an `<error>`, counted in
  `errors`; a run over `max_failed`, timed out, refused or interrupted is a `<failure>`.
- The file validates against Jenkins xunit's `junit-10.xsd` (tests/data holds its
  structure): no `skipped` attribute on `<testsuites>` (it is on `<testsuite>`), times are
  plain decimals. A test case's time is its run's duration, or for one that errored or
  was interrupted the time it took to get there (`_duration`); 0 only when nothing ran.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from sprunner.errors import ReportError
from sprunner.reconcile.actions import DONE
from sprunner.report.outcome import ApplyOutcome, CollectionOutcome, RunOutcome
from sprunner.util import redact
from sprunner.util.atomic import write_atomically
from sprunner.util.redact import Redactor

SUITE_NAME = "sprunner"
# A collection can have tens of thousands of failed jobs; CI viewers choke on that, and the
# JSON report holds them all anyway.
DEFAULT_MAX_FAILED_JOBS = 1000

# Everything XML 1.0 forbids: C0 controls except tab/newline/CR, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("", redact.current().redact(str(value)))


def _failure(collection: CollectionOutcome) -> tuple[str, str]:
    """(type, message) for a collection that is not ok."""
    if collection.error is not None:
        return "error", collection.error
    if collection.action == "error":
        return "error", "reconcile failed"
    run = collection.run
    health = collection.health
    if health is not None and not health.ok and (run is None or run.ok):
        # Not run to its end here: judged by its latest verdict (SPEC §9).
        return ("stale" if health.stale else "last_run_failed"), health.reason or "failed"
    assert run is not None  # not ok without an error means the run was not ok
    reason = f": {run.reason}" if run.reason else ""
    if run.status == "skipped":
        return "refused", f"run refused{reason or ': it would pass --max-credits'}"
    if run.status == "timed_out":
        return "timed_out", f"run timed out{reason} (it goes on remotely)"
    if run.status == "error":
        return "error", f"run failed{reason}"
    if run.status == "in_progress":
        return "interrupted", f"run still in progress{reason}"
    return "max_failed", f"{run.bad_jobs} failed/timed-out jobs over max_failed"


def _run_lines(run: RunOutcome, *, max_failed_jobs: int) -> list[str]:
    if run.run_id is None:  # skipped, refused, or failed to start: there are no counts
        return [f"run: {run.status}" + (f" ({run.reason})" if run.reason else "")]
    lines = [
        f"run {run.run_id}: {run.status}"
        + (" (adopted)" if run.adopted else "")
        + f"; {run.total_requests} requests, {run.success_requests} succeeded, "
        f"{run.failed_requests} failed, {run.timeout_requests} timed out"
    ]
    if run.failed_jobs:
        lines.append("failed jobs (url, status, error):")
        for job in run.failed_jobs[:max_failed_jobs]:
            lines.append(f"  {job.url}\t{job.status}\t{job.error}")
        hidden = len(run.failed_jobs) - max_failed_jobs
        if hidden > 0:
            lines.append(f"  ... and {hidden} more (see the JSON report)")
    return lines + _retry_lines(run, max_failed_jobs=max_failed_jobs)


def _retry_lines(run: RunOutcome, *, max_failed_jobs: int) -> list[str]:
    """Each retry run and the final per-request counts that judged the collection."""
    lines = []
    for retry in run.retries:
        counts = (
            f"; {retry.requests} requests, {retry.success_requests} succeeded, "
            f"{retry.failed_requests} failed, {retry.timeout_requests} timed out"
            if retry.run_id is not None
            else ""
        )
        lines.append(
            f"retry {retry.attempt} run {retry.run_id or '-'}: {retry.status}"
            + (" (adopted)" if retry.adopted else "")
            + counts
            + (f" ({retry.reason})" if retry.reason else "")
        )
    final = run.final
    if final is not None:
        lines.append(
            f"final: {final.total_requests} requests, {final.success_requests} succeeded, "
            f"{final.failed_requests} failed, {final.timeout_requests} timed out"
        )
        for job in final.failed_jobs[:max_failed_jobs]:
            lines.append(f"  {job.url}\t{job.status}\t{job.error}\tattempts {job.attempts}")
    return lines


def _duration(collection: CollectionOutcome, outcome: ApplyOutcome) -> float:
    """The test case's time: its run's duration when the run finished. A collection that
    errored or was interrupted takes the time it took to get there: from its run's start
    (else the apply's start: an error before any run came after loading and listing) to
    its error, or to the apply's end when a signal or an apply-wide error stopped it.
    Only a collection with nothing to do (unchanged, skipped) takes no time."""
    run = collection.run
    if run is not None and run.duration_s is not None:
        return run.duration_s
    if collection.ok:
        return 0.0
    started = run.started_at if run is not None else None
    start = started if started is not None else outcome.started_at
    end = collection.failed_at if collection.failed_at is not None else outcome.finished_at
    return max(0.0, end - start)


def _testcase(
    suite: ET.Element, collection: CollectionOutcome, *, duration: float, max_failed_jobs: int
) -> tuple[bool, bool]:
    """Append one test case; return (failed, skipped)."""
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_text(collection.file or "-"),
        name=_text(collection.name),
        time=f"{duration:.3f}",
    )
    details = [f"action: {DONE[collection.action]}"]
    if collection.collection_id:
        details.append(f"collection_id: {collection.collection_id}")
    run = collection.run
    if run is not None:
        details.extend(_run_lines(run, max_failed_jobs=max_failed_jobs))

    if not collection.ok:
        kind, message = _failure(collection)
        tag = "error" if kind == "error" else "failure"
        failure = ET.SubElement(case, tag, message=_text(message), type=kind)
        failure.text = _text("\n".join([message, *details]))
        return True, False
    if run is not None and run.status == "skipped":
        ET.SubElement(case, "skipped", message=_text(run.reason or "run skipped"))
        return False, True
    ET.SubElement(case, "system-out").text = _text("\n".join(details))
    return False, False


def to_xml(outcome: ApplyOutcome, *, max_failed_jobs: int = DEFAULT_MAX_FAILED_JOBS) -> bytes:
    """The JUnit document for one apply, as UTF-8 bytes with an XML declaration."""
    elapsed = f"{max(outcome.finished_at - outcome.started_at, 0.0):.3f}"
    timestamp = datetime.fromtimestamp(outcome.started_at, tz=timezone.utc)
    root = ET.Element("testsuites", name=SUITE_NAME, time=elapsed)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE_NAME,
        timestamp=timestamp.isoformat(timespec="seconds"),
        time=elapsed,
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="api_url", value=_text(outcome.api_url))
    ET.SubElement(
        properties, "property", name="interrupted", value=str(outcome.interrupted).lower()
    )
    if outcome.apply_id is not None:
        ET.SubElement(properties, "property", name="apply_id", value=outcome.apply_id)
    ET.SubElement(properties, "property", name="exit_code", value=str(outcome.exit_code))
    ET.SubElement(properties, "property", name="ok", value=str(outcome.ok).lower())

    failures = errors = skipped = 0
    if outcome.error is not None:
        # The apply itself failed (invalid files, the API unusable, the state unwritable):
        # one test case in error, so that CI never reads a stale or empty suite as green.
        case = ET.SubElement(suite, "testcase", classname="sprunner", name="apply", time=elapsed)
        message = f"exit code {outcome.exit_code}: {outcome.error}"
        ET.SubElement(case, "error", message=_text(message), type="apply").text = _text(message)
        errors += 1
    for collection in outcome.collections:
        duration = _duration(collection, outcome)
        failed, was_skipped = _testcase(
            suite, collection, duration=duration, max_failed_jobs=max_failed_jobs
        )
        is_error = failed and _failure(collection)[0] == "error"
        errors += is_error
        failures += failed and not is_error
        skipped += was_skipped

    notes = list(outcome.warnings)
    if outcome.interrupted:
        notes.insert(0, f"apply interrupted by signal {outcome.interrupted_by}; partial report")
    if notes:
        ET.SubElement(suite, "system-err").text = _text("\n".join(notes))

    counts = {
        "tests": str(len(outcome.collections) + (outcome.error is not None)),
        "failures": str(failures),
        "errors": str(errors),
    }
    for element in (root, suite):
        for key, value in counts.items():
            element.set(key, value)
    # junit-10.xsd allows `skipped` on a suite only, not on <testsuites>.
    suite.set("skipped", str(skipped))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(
    outcome: ApplyOutcome,
    path: Path,
    *,
    redactor: Redactor | None = None,
    max_failed_jobs: int = DEFAULT_MAX_FAILED_JOBS,
) -> None:
    """Write the JUnit report to `path` atomically: the old file or the new one, never half.

    `redactor`: the command's (default: the current one, see `sprunner.util.redact`).
    """
    with redact.using(redactor or redact.current()):
        data = to_xml(outcome, max_failed_jobs=max_failed_jobs)
    try:
        write_atomically(path, data)
    except OSError as e:
        raise ReportError(f"cannot write the JUnit report {path}: {e}") from e
