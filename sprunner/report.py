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
from sprunner.api.models import FailedJob
from sprunner.atomic import write_atomically
from sprunner.errors import ReportError
from sprunner.outcome import ApplyOutcome, CollectionOutcome, RunOutcome
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
        "failed_jobs": [_failed_job(j) for j in run.failed_jobs],
        **({} if run.results is None else {"results": dict(run.results)}),
    }


def _failed_job(job: FailedJob) -> dict[str, Any]:
    data: dict[str, Any] = {"job_id": job.job_id, "url": job.url, "status": job.status}
    data["error"] = job.error
    # What the jobs listing adds (results drained): only when known.
    for key in ("custom_id", "status_code", "block_reason"):
        if getattr(job, key) is not None:
            data[key] = getattr(job, key)
    return data


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
        "credits": sum(r.credits for r in runs),
        "total_requests": sum(r.total_requests for r in runs),
        "success_requests": sum(r.success_requests for r in runs),
        "failed_requests": sum(r.failed_requests for r in runs),
        "timeout_requests": sum(r.timeout_requests for r in runs),
    }


def to_json(outcome: ApplyOutcome) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "api_url": outcome.api_url,
        "ok": outcome.ok,
        "exit_code": outcome.exit_code,
        "interrupted": outcome.interrupted,
        "summary": summary(outcome),
        "collections": [_collection(c) for c in outcome.collections],
        "warnings": list(outcome.warnings),
        **({"error": outcome.error} if outcome.error is not None else {}),
    }


def dumps(outcome: ApplyOutcome, redactor: Redactor | None = None) -> str:
    """The report as text, masked by `redactor` (default: the current one).

    Masked value by value *before* encoding: JSON escaping (a secret holding `"` or `\\`)
    would otherwise hide a secret from a search of the encoded text.
    """
    masked = redact.structured(to_json(outcome), redactor or redact.current())
    return json.dumps(masked, indent=2, ensure_ascii=False) + "\n"


def write_report(outcome: ApplyOutcome, path: Path, redactor: Redactor | None = None) -> None:
    try:
        write_atomically(path, dumps(outcome, redactor))
    except OSError as e:
        raise ReportError(f"cannot write the report {path}: {e}") from e
