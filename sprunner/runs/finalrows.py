"""The final lines of a results file after retries (SPEC §8): one per request.

A results file of a collection with `run.retry` holds the first run's jobs and every
retry run's jobs, then ends with one line per rendered request saying how it ended after
all the retries: `final: true`, its `url` and `custom_id`, its final `status`
(`completed`, `failed` or `timeout`) and `attempts` (the runs it took). Still-failing
requests also carry their last job's id, status code, message and block reason.

Pure: built from the rendered requests and the retry phase's outcome, no I/O, so the
results wiring only has to write these rows after the last retry run's jobs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sprunner.outcome import FinalCounts, FinalJob
from sprunner.runs.companion import RequestKey, request_key


def final_rows(
    requests: Sequence[Mapping[str, Any]],
    final: FinalCounts,
    attempts: Mapping[RequestKey, int],
) -> Iterator[dict[str, Any]]:
    """One row per request, in job-file order."""
    failing: dict[RequestKey, list[FinalJob]] = defaultdict(list)
    for failed in final.failed_jobs:
        failing[(failed.url, failed.custom_id)].append(failed)
    for request in requests:
        key = request_key(request)
        still = failing.get(key)
        job = still.pop(0) if still else None
        row: dict[str, Any] = {
            "final": True,
            "url": key[0],
            "custom_id": key[1],
            "status": "completed" if job is None else job.status,
            "attempts": attempts.get(key, 1) if job is None else job.attempts,
        }
        if job is not None:
            row.update(
                job_id=job.job_id,
                status_code=job.status_code,
                message=job.error,
                block_reason=job.block_reason,
            )
        yield row
