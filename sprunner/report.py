"""The JSON report of an apply (SPEC §5), written atomically: never half a file.

`schemas/report.schema.json` describes it; the tests validate every report they produce.
Every string passes through the redactor: a failed job's URL may carry an env() value.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sprunner import redact
from sprunner.atomic import write_atomically
from sprunner.errors import ReportError
from sprunner.outcome import ApplyOutcome, CollectionOutcome, FinalCounts, RetryOutcome, RunOutcome
from sprunner.redact import Redactor

REPORT_VERSION = 1


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(run: RunOutcome) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status,
        "adopted": run.adopted,
        "credits": run.credits,
        "reason": run.reason,
        "total_requests": run.total_requests,
        "success_requests": run.success_requests,
        "failed_requests": run.failed_requests,
        "timeout_requests": run.timeout_requests,
        "failed_jobs": [
            {"job_id": j.job_id, "url": j.url, "status": j.status, "error": j.error}
            for j in run.failed_jobs
        ],
        **_retries(run),
    }


def _retries(run: RunOutcome) -> dict[str, Any]:
    """The retry phase (SPEC section 8): absent when there was none."""
    if run.final is None and not run.retries:
        return {}
    return {"retries": [_retry(r) for r in run.retries], "final": _final(run.final)}


def _retry(retry: RetryOutcome) -> dict[str, Any]:
    return {
        "attempt": retry.attempt,
        "run_id": retry.run_id,
        "status": retry.status,
        "adopted": retry.adopted,
        "requests": retry.requests,
        "success_requests": retry.success_requests,
        "failed_requests": retry.failed_requests,
        "timeout_requests": retry.timeout_requests,
        "credits": retry.credits,
        "reason": retry.reason,
    }


def _final(final: FinalCounts | None) -> dict[str, Any] | None:
    if final is None:
        return None
    return {
        "total_requests": final.total_requests,
        "success_requests": final.success_requests,
        "failed_requests": final.failed_requests,
        "timeout_requests": final.timeout_requests,
        "unmatched": final.unmatched,
        "failed_jobs": [
            {
                "job_id": j.job_id,
                "url": j.url,
                "custom_id": j.custom_id,
                "status": j.status,
                "error": j.error,
                "status_code": j.status_code,
                "block_reason": j.block_reason,
                "attempts": j.attempts,
            }
            for j in final.failed_jobs
        ],
    }


def _collection(c: CollectionOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": c.name,
        "file": c.file,
        "collection_id": c.collection_id,
        "action": c.action,
        "ok": c.ok,
        "requests": c.requests,
        "run": None if c.run is None else _run(c.run),
    }
    if c.error is not None:
        data["error"] = c.error
    return data


def summary(outcome: ApplyOutcome) -> dict[str, int]:
    runs = outcome.runs
    return {
        "collections": len(outcome.collections),
        "created": outcome.count("created"),
        "updated": outcome.count("updated"),
        "unchanged": outcome.count("unchanged"),
        "deleted": outcome.count("deleted"),
        "errors": outcome.count("error"),
        "failed": sum(1 for c in outcome.collections if not c.ok),
        "runs": len(runs),
        "retries": sum(len(r.retries) for r in runs),
        "credits": sum(r.credits for r in runs),
        # Per request, after the retries (SPEC section 8): what judged the apply.
        "total_requests": sum((r.final or r).total_requests for r in runs),
        "success_requests": sum((r.final or r).success_requests for r in runs),
        "failed_requests": sum((r.final or r).failed_requests for r in runs),
        "timeout_requests": sum((r.final or r).timeout_requests for r in runs),
    }


def to_json(outcome: ApplyOutcome) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "api_url": outcome.api_url,
        "ok": outcome.ok,
        "interrupted": outcome.interrupted,
        "summary": summary(outcome),
        "collections": [_collection(c) for c in outcome.collections],
        "warnings": list(outcome.warnings),
    }


def dumps(outcome: ApplyOutcome, redactor: Redactor | None = None) -> str:
    """The report as text, masked by `redactor` (default: the current one)."""
    text = json.dumps(to_json(outcome), indent=2, ensure_ascii=False)
    return (redactor or redact.current()).redact(text) + "\n"


def write_report(outcome: ApplyOutcome, path: Path, redactor: Redactor | None = None) -> None:
    try:
        write_atomically(path, dumps(outcome, redactor))
    except OSError as e:
        raise ReportError(f"cannot write the report {path}: {e}") from e
