"""Failed jobs as sprunner shows them: the request each one is, never the API's echo.

A failed job comes back from the API with the URL it was sent, as the API echoes it:
perhaps changed (query reordered, a fragment or a parameter added, upper-cased), and with
any env() value the URL carries in it. Before a report, JUnit file, summary or log line
sees it, each job is matched to the rendered request it is (`jobfile.identify`, by its
URL and custom_id) and shown as that request's masked render (`DesiredCollection`), with
the keyed fingerprint of the request (`sprunner.report.fingerprints`) that `sprunner retry`
matches on. A job that is no request, or could be several, keeps its echo, which the
redactor's search of every encoding masks (`sprunner.util.redact`), and no fingerprint: a
report never names a request it is not sure of.

Done on the values, before any encoding, so that every consumer gets the shown form.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from sprunner.api.models import FailedJob
from sprunner.jobfile.model import DesiredCollection
from sprunner.report.fingerprints import RequestFingerprints
from sprunner.report.outcome import FinalCounts, FinalJob, ShownJob


@dataclasses.dataclass(frozen=True)
class Identity:
    """How one echoed job is shown."""

    url: str
    custom_id: str | None
    request: str | None  # the fingerprint; None: no request, or several


def identities(
    desired: DesiredCollection | None,
    echoed: Sequence[tuple[str, str | None]],
    prints: RequestFingerprints | None,
) -> list[Identity]:
    """The shown url and custom_id of each echoed `(url, custom_id)`, and the fingerprint
    of the request it is.

    Jobs that could each be any of the same several requests (they differ in a field the
    API does not echo) name them when there are as many jobs as requests: every one of
    them failed, so the jobs are those requests, one each. Fewer jobs than requests leave
    each unnamed: which of them failed cannot be told.
    """
    if desired is None or not desired.requests:
        return [Identity(url, custom_id, None) for url, custom_id in echoed]
    found = [desired.index.find(url, custom_id) for url, custom_id in echoed]
    named: list[int | None] = [f[0] if len(f) == 1 else None for f in found]
    alike: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for position, candidates in enumerate(found):
        if len(candidates) > 1:
            alike[candidates].append(position)
    for candidates, positions in alike.items():
        if len(positions) == len(candidates):
            for position, index in zip(positions, candidates, strict=True):
                named[position] = index
    return [
        _identity(desired, url, custom_id, candidates, index, prints)
        for (url, custom_id), candidates, index in zip(echoed, found, named, strict=True)
    ]


def _identity(
    desired: DesiredCollection,
    url: str,
    custom_id: str | None,
    found: tuple[int, ...],
    index: int | None,
    prints: RequestFingerprints | None,
) -> Identity:
    request = prints.of(desired.requests[index]) if prints and index is not None else None
    shown = desired.display_of(found) if desired.masked else None
    if shown is None:
        masked = desired.mask_value(custom_id) if custom_id is not None else None
        return Identity(url, masked or custom_id, request)
    # A job that did not say its custom_id keeps saying none: the report shows what the
    # API gave, masked, never more.
    return Identity(shown[0], None if custom_id is None else shown[1], request)


def _text(error: str, echoed: str, shown: str) -> str:
    """The error with the job's echoed URL (what an API error quotes) as it is shown."""
    return error.replace(echoed, shown) if echoed and echoed != shown else error


def failed_jobs(
    desired: DesiredCollection | None,
    jobs: Sequence[FailedJob],
    prints: RequestFingerprints | None,
) -> tuple[ShownJob, ...]:
    out = []
    seens = identities(desired, [(job.url, job.custom_id) for job in jobs], prints)
    for job, seen in zip(jobs, seens, strict=True):
        out.append(
            ShownJob(
                job_id=job.job_id,
                url=seen.url,
                status=job.status,
                error=_text(job.error, job.url, seen.url),
                custom_id=seen.custom_id,
                status_code=job.status_code,
                block_reason=job.block_reason,
                request=seen.request,
            )
        )
    return tuple(out)


def final_counts(
    desired: DesiredCollection | None,
    final: FinalCounts | None,
    prints: RequestFingerprints | None,
) -> FinalCounts | None:
    """The final counts with each still-failing job shown (`FinalJob.request` set)."""
    if final is None or not final.failed_jobs:
        return final
    jobs: list[FinalJob] = []
    echoed = [(job.url, job.custom_id) for job in final.failed_jobs]
    for job, seen in zip(final.failed_jobs, identities(desired, echoed, prints), strict=True):
        jobs.append(
            dataclasses.replace(
                job,
                url=seen.url,
                custom_id=seen.custom_id,
                error=_text(job.error, job.url, seen.url),
                request=seen.request,
            )
        )
    return dataclasses.replace(final, failed_jobs=tuple(jobs))
