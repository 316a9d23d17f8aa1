"""The JSON report of an apply (SPEC §5), written atomically: never half a file.

`schemas/report.schema.json` describes it; the tests validate every report they produce.
Every string passes through the redactor: a failed job's URL may carry an env() value.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sprunner import __version__
from sprunner.errors import ReportError
from sprunner.reconcile.actions import DONE
from sprunner.report.outcome import (
    ApplyOutcome,
    CollectionOutcome,
    FinalCounts,
    RetryOutcome,
    RunOutcome,
    ShownJob,
)
from sprunner.runs import verdict
from sprunner.util import redact
from sprunner.util.atomic import write_atomically
from sprunner.util.redact import Redactor

REPORT_VERSION = 1


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else _iso(epoch)


def _failed_job(job: ShownJob) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": job.job_id,
        "url": job.url,
        "status": job.status,
        "error": job.error,
        # The request it is, keyed (`sprunner.report.fingerprints`): what `sprunner retry` matches.
        "request": job.request,
    }
    # Only what the API gave: an absent key means "not said", never "empty".
    extras = {"custom_id": job.custom_id, "status_code": job.status_code}
    extras["block_reason"] = job.block_reason
    data.update({k: v for k, v in extras.items() if v is not None})
    return data


def _run(run: RunOutcome) -> dict[str, Any]:
    duration = run.duration_s
    return {
        "run_id": run.run_id,
        "status": run.status,
        "started_at": _iso_or_none(run.started_at),
        "finished_at": _iso_or_none(run.finished_at),
        "duration_s": None if duration is None else round(duration, 3),
        "adopted": run.adopted,
        "credits": run.credits,
        "reason": run.reason,
        "total_requests": run.total_requests,
        "success_requests": run.success_requests,
        "failed_requests": run.failed_requests,
        "timeout_requests": run.timeout_requests,
        "failed_jobs": [_failed_job(j) for j in run.failed_jobs],
        **({} if run.results is None else {"results": dict(run.results)}),
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
        **({} if retry.results is None else {"results": dict(retry.results)}),
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
                "request": j.request,
            }
            for j in final.failed_jobs
        ],
    }


def _collection(c: CollectionOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": c.name,
        "file": c.file,
        "collection_id": c.collection_id,
        "action": DONE[c.action],
        "ok": c.ok,
        "requests": c.requests,
        "run": None if c.run is None else _run(c.run),
    }
    if c.error is not None:
        data["error"] = c.error
    if c.results_pending:
        data["results_pending"] = [dict(p) for p in c.results_pending]
    if c.results_caught_up:
        data["results_caught_up"] = [dict(p) for p in c.results_caught_up]
    if not c.ok:
        data["reason"] = c.failure_reason
    if c.stale:
        data["stale"] = True
    if c.verdict is not None:
        data["verdict"] = verdict.document(c.verdict)
    return data


def summary(outcome: ApplyOutcome) -> dict[str, int]:
    runs = outcome.runs
    return {
        "collections": len(outcome.collections),
        "created": outcome.count("create"),
        "updated": outcome.count("update"),
        "unchanged": outcome.count("unchanged"),
        "deleted": outcome.count("delete"),
        "errors": outcome.count("error"),
        "failed": sum(1 for c in outcome.collections if not c.ok),
        "stale": sum(1 for c in outcome.collections if c.stale),
        "runs": len(runs),
        "retries": sum(len(r.retries) for r in runs),
        # Charged (`sprunner.runs.credits`): successful requests x cost, retries included.
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
        "sprunner_version": __version__,
        "apply_id": outcome.apply_id,
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
